package inbound

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"smarthost/config"
	"smarthost/relay/resolve/resolvetest"
)

// spfZone publishes one SPF record per test domain, each named for the
// result it gives a client at badIP (goodIP is permitted by most).
func spfZone() *resolvetest.Resolver {
	r := zone(map[string][]string{
		"example.test":       {"v=spf1 ip4:192.0.2.0/24 -all"},
		"mail.example.test":  {"v=spf1 a -all"},
		"soft.test":          {"v=spf1 ip4:192.0.2.0/24 ~all"},
		"neutral.test":       {"v=spf1 ?all"},
		"perm.test":          {"v=spf1 ip4:192.0.2.0/24 bogus:x -all"},
		"two.test":           {"v=spf1 -all", "v=spf1 +all"},
		"mx.test":            {"v=spf1 mx -all"},
		"v6.test":            {"v=spf1 ip6:2001:db8::/32 -all"},
		"inc.test":           {"v=spf1 include:broken.test -all"},
		"other.test":         {"some other TXT record"},
		"redirect.test":      {"v=spf1 redirect=example.test"},
		"xn--bcher-kva.test": {"v=spf1 ip4:192.0.2.0/24 -all"},
	})
	r.IP = map[string][]netip.Addr{
		"mail.example.test": {netip.MustParseAddr(goodIP)},
		"mx1.mx.test":       {netip.MustParseAddr(goodIP)},
	}
	r.MX = map[string][]*net.MX{"mx.test": {{Host: "mx1.mx.test.", Pref: 10}}}
	r.ServFail["broken.test"] = true
	r.ServFail["servfail.test"] = true
	r.Timeout["slow.test"] = true
	return r
}

// TestSPF_Results checks every SPF result (RFC 7208 §2.6) end to end:
// the Received-SPF field, the spf result in Authentication-Results, and
// what enforce answers: only "fail" refuses, only "temperror" defers.
func TestSPF_Results(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ip       string
		helo     string
		from     string
		want     string // the result
		identity string
		enforce  error // what Finish returns under spf=enforce
	}{
		{"pass", goodIP, defaultHelo, "alice@example.test", "pass", "mailfrom", nil},
		{"fail -all", badIP, defaultHelo, "alice@example.test", "fail", "mailfrom", ErrSPFFail},
		{"softfail ~all never refuses", badIP, defaultHelo, "alice@soft.test", "softfail", "mailfrom", nil},
		{"neutral", badIP, defaultHelo, "alice@neutral.test", "neutral", "mailfrom", nil},
		{"none: no TXT at all", badIP, defaultHelo, "alice@nothing.test", "none", "mailfrom", nil},
		{"none: TXT but no SPF record", badIP, defaultHelo, "alice@other.test", "none", "mailfrom", nil},
		{"none: single-label domain, no query", badIP, defaultHelo, "alice@localhost", "none", "mailfrom", nil},
		{"temperror: SERVFAIL", badIP, defaultHelo, "alice@servfail.test", "temperror", "mailfrom", ErrTempFail},
		{"temperror: timeout", badIP, defaultHelo, "alice@slow.test", "temperror", "mailfrom", ErrTempFail},
		{"temperror: include of a SERVFAIL", badIP, defaultHelo, "alice@inc.test", "temperror", "mailfrom", ErrTempFail},
		{"permerror: unknown mechanism never refuses", badIP, defaultHelo, "alice@perm.test", "permerror", "mailfrom", nil},
		{"permerror: two SPF records", badIP, defaultHelo, "alice@two.test", "permerror", "mailfrom", nil},
		{"pass by mx, through LookupNetIP", goodIP, defaultHelo, "alice@mx.test", "pass", "mailfrom", nil},
		{"fail by mx", badIP, defaultHelo, "alice@mx.test", "fail", "mailfrom", ErrSPFFail},
		{"pass by redirect", goodIP, defaultHelo, "alice@redirect.test", "pass", "mailfrom", nil},
		{"pass for IPv6", "2001:db8::25", defaultHelo, "alice@v6.test", "pass", "mailfrom", nil},
		{"IPv4-mapped client is IPv4", "::ffff:" + goodIP, defaultHelo, "alice@example.test", "pass", "mailfrom", nil},
		{"upper-case domain", goodIP, defaultHelo, "alice@EXAMPLE.TEST", "pass", "mailfrom", nil},
		{"U-label domain is looked up as A-labels", goodIP, defaultHelo, "alice@bücher.test", "pass", "mailfrom", nil},
		{"U-label domain, not permitted", badIP, defaultHelo, "alice@bücher.test", "fail", "mailfrom", ErrSPFFail},
		{"null sender: HELO identity pass", goodIP, "mail.example.test", "", "pass", "helo", nil},
		{"null sender: HELO identity fail", badIP, "mail.example.test", "", "fail", "helo", ErrSPFFail},
		{"null sender: address literal HELO is none", badIP, "[198.51.100.7]", "", "none", "helo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := Envelope{ClientIP: netip.MustParseAddr(tt.ip), Helo: tt.helo, MailFrom: tt.from}
			for _, mode := range []config.CheckMode{config.CheckTag, config.CheckEnforce} {
				c := newChecker(t, modes(mode, config.CheckOff, config.CheckOff), spfZone())
				got := check(t, c, env, message("alice@example.test"), 4096)

				wantErr := error(nil)
				if mode == config.CheckEnforce {
					wantErr = tt.enforce
				}
				if !errors.Is(got.err, wantErr) || (wantErr == nil) != (got.err == nil) {
					t.Errorf("%s: Finish error = %v, want %v", mode, got.err, wantErr)
				}
				if got.err != nil && !errors.Is(got.err, ErrSPFFail) && !errors.Is(got.err, ErrTempFail) {
					t.Errorf("%s: Finish error %v is not a verdict", mode, got.err)
				}
				h := got.verdict.Header
				rspf := headerField(h, "Received-SPF")
				if res, _, _ := strings.Cut(rspf, " "); res != tt.want {
					t.Errorf("%s: Received-SPF = %q, want result %s", mode, rspf, tt.want)
				}
				if want := "identity=" + tt.identity; !strings.HasSuffix(rspf, want) {
					t.Errorf("%s: Received-SPF = %q, want it to end in %s", mode, rspf, want)
				}
				ar := headerField(h, "Authentication-Results")
				wantAR := hostname + "; spf=" + tt.want
				if tt.identity == "helo" {
					wantAR += " smtp.helo=" + tt.helo
				} else {
					wantAR += " smtp.mailfrom=" + tt.from
				}
				if ar != wantAR {
					t.Errorf("%s: Authentication-Results = %q, want %q", mode, ar, wantAR)
				}
				if want := "spf=" + tt.want; !strings.HasPrefix(got.verdict.Summary, want) {
					t.Errorf("%s: Summary = %q, want it to start with %q", mode, got.verdict.Summary, want)
				}
			}
		})
	}
}

// TestSPF_NullSenderChecksHELO: for the null sender the identity is
// postmaster@<HELO> (RFC 7208 §2.4), and only the HELO name is looked up.
func TestSPF_NullSenderChecksHELO(t *testing.T) {
	t.Parallel()
	r := spfZone()
	c := newChecker(t, modes(config.CheckTag, config.CheckOff, config.CheckOff), r)
	env := Envelope{ClientIP: netip.MustParseAddr(goodIP), Helo: "mail.example.test"}
	got := check(t, c, env, message("alice@example.test"), 4096)
	rspf := headerField(got.verdict.Header, "Received-SPF")
	for _, want := range []string{"domain of postmaster@mail.example.test designates", `envelope-from="<>";`, "helo=mail.example.test;", "identity=helo"} {
		if !strings.Contains(rspf, want) {
			t.Errorf("Received-SPF = %q, want it to contain %q", rspf, want)
		}
	}
	if q := r.Queries(); !slices.Contains(q, "TXT mail.example.test") || slices.Contains(q, "TXT example.test") {
		t.Errorf("queries = %q, want the HELO name's TXT and not the From domain's", q)
	}
}

// TestReceivedSPF_Format pins the field's syntax (RFC 7208 §9.1): values
// that are not dot-atoms are quoted, comments escape parentheses, lines
// are folded to 78 characters.
func TestReceivedSPF_Format(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    spfOutcome
		env  Envelope
		want string
	}{
		{
			name: "pass",
			o:    spfOutcome{result: "pass", identity: "mailfrom", sender: "alice@example.test"},
			env:  Envelope{ClientIP: netip.MustParseAddr(goodIP), Helo: "mail.example.test", MailFrom: "alice@example.test"},
			want: "Received-SPF: pass (mx.example.org: domain of alice@example.test designates\r\n" +
				" 192.0.2.10 as permitted sender) client-ip=192.0.2.10;\r\n" +
				" envelope-from=\"alice@example.test\"; helo=mail.example.test;\r\n" +
				" receiver=mx.example.org; identity=mailfrom\r\n",
		},
		{
			name: "IPv6 client and odd sender",
			o:    spfOutcome{result: "fail", identity: "mailfrom", sender: `"a(b)\"c"@example.test`},
			env:  Envelope{ClientIP: netip.MustParseAddr("2001:db8::1"), Helo: "[2001:db8::1]", MailFrom: `"a(b)\"c"@example.test`},
			want: "Received-SPF: fail (mx.example.org: domain of \"a\\(b\\)\\\\\"c\"@example.test does\r\n" +
				" not designate 2001:db8::1 as permitted sender) client-ip=\"2001:db8::1\";\r\n" +
				" envelope-from=\"\\\"a(b)\\\\\\\"c\\\"@example.test\"; helo=\"[2001:db8::1]\";\r\n" +
				" receiver=mx.example.org; identity=mailfrom\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(receivedSPF(tt.o, tt.env, hostname))
			if got != tt.want {
				t.Errorf("receivedSPF =\n%s\nwant\n%s", got, tt.want)
			}
			if n := longestLine([]byte(got)); n > maxLineLength {
				t.Errorf("longest line %d > %d", n, maxLineLength)
			}
		})
	}
}
