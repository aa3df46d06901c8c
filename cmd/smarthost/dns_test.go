package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/interop"
)

// runDNSCmd runs smarthost with args and returns the exit status, stdout
// and stderr.
func runDNSCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

// dnsCheckConfig writes a configuration for hostname that signs with one
// new key of kind for domain. It returns the file and the key; the DNS
// server, which can start only once the keys exist, is set later by
// setDNSServer.
func dnsCheckConfig(t *testing.T, hostname, domain string, kind dkim.Kind) (string, dkim.KeyFiles) {
	t.Helper()
	dir := t.TempDir()
	key, err := dkim.Keygen(dkim.KeygenOptions{Dir: dir, Domain: domain, Selector: "s1", Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`hostname = %q

[tls]
self_signed = true

[[dkim.key]]
domain = %q
selector = "s1"
private_key = %q

[dns]
server = ""
`, hostname, domain, key.PrivateKey)
	path := filepath.Join(dir, "smarthost.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, key
}

// TestDNSCheck_AgainstDnsmasq is issue 7's "test it against dnsmasq with
// good and broken records": a real dnsmasq publishes good.test, set up
// right for the server mail.good.test, and broken.test, wrong in every
// way the check knows of for the server mail.broken.test.
func TestDNSCheck_AgainstDnsmasq(t *testing.T) {
	t.Parallel()
	// The keys come first: their records go into the zone.
	goodConfig, goodKey := dnsCheckConfig(t, "mail.good.test", "good.test", dkim.KindRSA2048)
	brokenConfig, brokenKey := dnsCheckConfig(t, "mail.broken.test", "broken.test", dkim.KindEd25519)
	var nine []string
	hosts := map[string][]string{
		"mail.good.test":    {"127.0.0.10"},
		"mail.broken.test":  {"127.0.0.20"},
		"mx.elsewhere.test": {"127.0.0.30"},
	}
	for i := 1; i <= 9; i++ {
		h := fmt.Sprintf("h%d.broken.test", i)
		nine = append(nine, "a:"+h)
		hosts[h] = []string{fmt.Sprintf("127.0.1.%d", i)}
	}
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{"good.test", "broken.test", "elsewhere.test", "in-addr.arpa"},
		MX: map[string][]string{
			"good.test":   {"10 mail.good.test"},
			"broken.test": {"10 mx.elsewhere.test"},
		},
		Hosts: hosts,
		TXT: map[string][]string{
			"good.test":               {"v=spf1 mx -all"},
			"s1._domainkey.good.test": {goodKey.Record.String()},
			"_dmarc.good.test":        {"v=DMARC1; p=reject; rua=mailto:dmarc@good.test"},
			"_smtp._tls.good.test":    {"v=TLSRPTv1; rua=mailto:tls@good.test"},
			// Eleven lookups, the last one (mx) over the limit; +all.
			"broken.test":               {"v=spf1 include:_spf.broken.test mx +all"},
			"_spf.broken.test":          {"v=spf1 " + strings.Join(nine, " ") + " -all"},
			"s1._domainkey.broken.test": {goodKey.Record.String()},
			"_mta-sts.broken.test":      {"v=STSv1; id=2026-01"},
		},
		// The reverse DNS of mail.broken.test names a host that does
		// not exist.
		PTR: map[string][]string{"127.0.0.20": {"vps.elsewhere.test"}},
	})
	for _, path := range []string{goodConfig, brokenConfig} {
		setDNSServer(t, path, dns.Addr)
	}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := runDNSCmd("dns", "check", "good.test", "-config", goodConfig)
		if code != 0 || errOut != "" {
			t.Errorf("dns check good.test = exit %d, stderr %q; want 0 and nothing\n%s", code, errOut, out)
		}
		wantLevels := []string{"OK MX", "OK MX", "OK SPF", "OK SPF", "OK SPF", "OK SPF", "OK DKIM",
			"OK DMARC", "OK DMARC", "OK DMARC", "OK DMARC", "INFO DMARC", "OK PTR", "INFO MTA-STS", "OK TLS-RPT"}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		var levels []string
		for _, l := range lines[:len(lines)-1] {
			levels = append(levels, strings.Join(strings.Fields(l)[:2], " "))
		}
		if !slices.Equal(levels, wantLevels) {
			t.Errorf("dns check good.test levels = %q, want %q\n%s", levels, wantLevels, out)
		}
		for _, want := range []string{
			"OK    MX      MX 10 mail.good.test: 127.0.0.10",
			"OK    MX      mail.good.test is this server (hostname)",
			"OK    SPF     authorises 127.0.0.10 (mail.good.test)",
			"OK    DKIM    s1._domainkey.good.test (rsa-sha256, 2048-bit) publishes the key in " + goodKey.PrivateKey,
			"OK    DMARC   DKIM signatures with d=good.test align with good.test (adkim=r)",
			"OK    PTR     127.0.0.10 → mail.good.test → 127.0.0.10 (forward-confirmed)",
			"good.test: 0 errors, 0 warnings",
		} {
			if !slices.Contains(lines, want) {
				t.Errorf("dns check good.test: no line %q in\n%s", want, out)
			}
		}
	})

	t.Run("broken", func(t *testing.T) {
		t.Parallel()
		// Flags after the domain work too.
		code, out, errOut := runDNSCmd("dns", "check", "-config", brokenConfig, "broken.test")
		lines := strings.Split(out, "\n")
		for _, want := range []string{
			"WARN  MX      no MX of broken.test points at this server (mail.broken.test, 127.0.0.20): its mail is received elsewhere; " +
				"fix: if smarthost should receive mail for broken.test, publish `broken.test. IN MX 10 mail.broken.test.` and list it in relay_domains; otherwise ignore this",
			"ERROR SPF     11 DNS lookups, more than the 10 RFC 7208 §4.6.4 allows: receivers return permerror for mail from any host not matched before the limit; " +
				"fix: replace include:, a and mx terms with ip4:/ip6: ranges, and drop includes no longer used",
			`ERROR SPF     "+all" lets every host on the Internet pass SPF for broken.test; fix: end the record with -all (or ~all while you are still finding all your senders)`,
			"ERROR SPF     evaluating it for 127.0.0.20 gives permerror (lookup limit reached): receivers treat mail from this server as failing SPF checks; fix: fix the errors reported above",
			"ERROR DKIM    s1._domainkey.broken.test (ed25519-sha256, 256-bit): the record is for k=rsa, the key is ed25519; " +
				"fix: publish the record `smarthost dkim record -domain broken.test -selector s1 -key " + brokenKey.PrivateKey + "` prints",
			"ERROR DMARC   no DMARC record at _dmarc.broken.test: large receivers (Gmail, Yahoo) require one from bulk senders and treat mail without it with suspicion, and you get no reports; " +
				"fix: publish `_dmarc.broken.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@broken.test\"`, then move to p=quarantine or p=reject once the reports are clean",
			"ERROR PTR     127.0.0.20 → vps.elsewhere.test, which does not resolve back to 127.0.0.20: no forward-confirmed reverse DNS, so receivers treat the name as unknown; " +
				"fix: set the reverse DNS (PTR) of 127.0.0.20 to mail.broken.test; it is a setting of whoever provides the address (the VPS panel or support)",
			`ERROR MTA-STS _mta-sts.broken.test "v=STSv1; id=2026-01": id= must be 1 to 32 letters and digits, so senders ignore MTA-STS (RFC 8461 §3.1); ` +
				"fix: publish `_mta-sts.broken.test. IN TXT \"v=STSv1; id=20260101T000000\"` (change id whenever the policy changes)",
			"INFO  TLS-RPT no TLS-RPT record at _smtp._tls.broken.test: you get no reports of senders failing to reach you over TLS; " +
				"fix: optional: publish `_smtp._tls.broken.test. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@broken.test\"`",
			"broken.test: 7 errors, 2 warnings",
		} {
			if !slices.Contains(lines, want) {
				t.Errorf("dns check broken.test: no line\n%s\nin\n%s", want, out)
			}
		}
		wantErr := "smarthost dns: broken.test: 7 of the checks above failed; each ERROR line says how to fix it\n"
		if code != 1 || errOut != wantErr {
			t.Errorf("dns check broken.test = exit %d, stderr %q; want 1, %q", code, errOut, wantErr)
		}
	})
}

// setDNSServer points a configuration written by dnsCheckConfig at the
// DNS server.
func setDNSServer(t *testing.T, path, addr string) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte(`server = ""`), []byte(fmt.Sprintf("server = %q", addr)), 1)
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDNS_Usage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string // substring of stderr
	}{
		{[]string{"dns"}, 2, "usage: smarthost dns check DOMAIN [-config F]"},
		{[]string{"dns", "-h"}, 0, "usage: smarthost dns check DOMAIN"},
		{[]string{"dns", "lookup", "example.test"}, 2, `unknown subcommand "lookup"`},
		{[]string{"dns", "check"}, 2, "give exactly one DOMAIN"},
		{[]string{"dns", "check", "a.test", "b.test"}, 2, "give exactly one DOMAIN"},
		{[]string{"dns", "check", "-h"}, 0, "-config file"},
		{[]string{"dns", "check", "a.test", "-config", "/nonexistent/smarthost.toml"}, 1, "no such file or directory"},
	}
	for _, tt := range tests {
		code, out, errOut := runDNSCmd(tt.args...)
		if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) || out != "" {
			t.Errorf("smarthost %q = exit %d, stdout %q, stderr %q; want exit %d, stderr containing %q", tt.args, code, out, errOut, tt.wantCode, tt.wantErr)
		}
	}
}
