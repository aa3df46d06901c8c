package inbound

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/interop"
	"smarthost/relay/resolve"
)

// TestDnsmasq_Checks runs the checks against a real DNS server: dnsmasq on
// a loopback port publishing SPF, DKIM (the fixed RSA key, split into
// 255-octet strings, and a fresh Ed25519 key from dkim.Keygen) and DMARC
// records for the test sender domains, with every check enforced. pass, fail, none and
// temperror each give their header and their answer.
//
// temperror comes from dnsmasq itself: broken.test is outside the domains
// it answers, and with no upstream server it refuses the query (Go reports
// "server misbehaving", which is not a DNS answer). This also covers the
// adapter that keeps the spf library from taking such a refusal for a
// permerror.
func TestDnsmasq_Checks(t *testing.T) {
	t.Parallel()
	// A key made as `smarthost dkim keygen` makes one, beside the fixed
	// RSA key.
	fresh, err := dkim.Keygen(dkim.KeygenOptions{Dir: t.TempDir(), Domain: "example.test", Selector: "fresh", Kind: dkim.KindEd25519})
	if err != nil {
		t.Fatal(err)
	}
	freshSel := key{fresh.PrivateKey, "example.test", "fresh"}
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{"example.test", "nodmarc.test"},
		TXT: map[string][]string{
			"example.test":                  {"v=spf1 ip4:127.0.0.1 -all"},
			"rsa._domainkey.example.test":   {rsaSel.record(t)},
			"fresh._domainkey.example.test": {fresh.Record.String()},
			"_dmarc.example.test":           {"v=DMARC1; p=reject; rua=mailto:dmarc@example.test"},
		},
	})
	c := newChecker(t, modes(config.CheckEnforce, config.CheckEnforce, config.CheckEnforce), resolve.New(dns.Addr, 2*time.Second))
	tests := []struct {
		name        string
		ip          string
		mailFrom    string
		msg         string
		wantSummary string
		wantAR      string // Authentication-Results, unfolded
		wantErr     error
	}{
		{
			name: "pass", ip: "127.0.0.1", mailFrom: "a@example.test",
			msg:         sign(t, message("a@example.test"), rsaSel, freshSel),
			wantSummary: "spf=pass dkim=pass,pass dmarc=pass",
			wantAR: "spf=pass smtp.mailfrom=a@example.test; dkim=pass header.a=ed25519-sha256 header.b=* header.d=example.test header.s=fresh; " +
				"dkim=pass header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa; dmarc=pass header.from=example.test polrec.p=reject",
		},
		{
			name: "fail: wrong key, client not permitted", ip: "127.0.0.2", mailFrom: "a@example.test",
			msg:         sign(t, message("a@example.test"), otherSel),
			wantSummary: "spf=fail dkim=fail dmarc=fail action=reject",
			wantAR:      `spf=fail smtp.mailfrom=a@example.test; dkim=fail reason="signature did not verify: crypto/rsa: verification error" header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa; dmarc=fail header.from=example.test policy.dmarc=reject polrec.p=reject`,
			wantErr:     ErrSPFFail,
		},
		{
			name: "fail: forged From", ip: "127.0.0.1", mailFrom: "x@nodmarc.test",
			msg:         message("ceo@example.test"),
			wantSummary: "spf=none dkim=none dmarc=fail action=reject",
			wantAR:      "spf=none smtp.mailfrom=x@nodmarc.test; dkim=none; dmarc=fail header.from=example.test policy.dmarc=reject polrec.p=reject",
			wantErr:     ErrDMARCReject,
		},
		{
			name: "none", ip: "127.0.0.2", mailFrom: "a@nodmarc.test",
			msg:         message("a@nodmarc.test"),
			wantSummary: "spf=none dkim=none dmarc=none",
			wantAR:      `spf=none smtp.mailfrom=a@nodmarc.test; dkim=none; dmarc=none reason="no DMARC record" header.from=nodmarc.test`,
		},
		{
			name: "temperror", ip: "127.0.0.2", mailFrom: "a@broken.test",
			msg:         message("a@broken.test"),
			wantSummary: "spf=temperror dkim=none dmarc=temperror action=tempfail",
			wantAR:      `spf=temperror smtp.mailfrom=a@broken.test; dkim=none; dmarc=temperror reason="DMARC record unavailable" header.from=broken.test`,
			wantErr:     ErrTempFail,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := Envelope{ClientIP: netip.MustParseAddr(tt.ip), Helo: "client.example.test", MailFrom: tt.mailFrom}
			got := check(t, c, env, tt.msg, 4096)
			if !errors.Is(got.err, tt.wantErr) || (tt.wantErr == nil) != (got.err == nil) {
				t.Errorf("Finish error = %v, want %v", got.err, tt.wantErr)
			}
			if got.verdict.Summary != tt.wantSummary {
				t.Errorf("Summary = %q, want %q", got.verdict.Summary, tt.wantSummary)
			}
			ar := headerField(got.verdict.Header, "Authentication-Results")
			results := strings.TrimPrefix(ar, hostname+"; ")
			if !matchResults(strings.Split(results, "; "), strings.Split(tt.wantAR, "; ")) {
				t.Errorf("Authentication-Results = %q, want %s; %s", ar, hostname, tt.wantAR)
			}
			if rspf := headerField(got.verdict.Header, "Received-SPF"); !strings.HasPrefix(rspf, strings.TrimPrefix(strings.Fields(tt.wantSummary)[0], "spf=")+" ") {
				t.Errorf("Received-SPF = %q, want the result of %s", rspf, tt.wantSummary)
			}
		})
	}
}
