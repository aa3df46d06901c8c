package dnscheck

import (
	"strings"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheck_DKIM(t *testing.T) {
	t.Parallel()
	keys := newKeys(t,
		keySpec{domain: testDomain, selector: "rsa", kind: dkim.KindRSA2048},
		keySpec{domain: testDomain, selector: "ed", kind: dkim.KindEd25519},
		keySpec{domain: "other.test", selector: "ed", kind: dkim.KindEd25519},
	)
	rsaName := "rsa._domainkey." + testDomain
	withTag := func(tag string) func(z *resolvetest.Resolver) {
		return func(z *resolvetest.Resolver) {
			z.TXT[rsaName] = []string{strings.Replace(z.TXT[rsaName][0], "v=DKIM1; ", "v=DKIM1; "+tag+"; ", 1)}
		}
	}
	other := otherRecord(t)
	runZoneCases(t, CheckDKIM, keys, []zoneCase{
		// other.test's key is not checked: it does not sign for the domain.
		{name: "both published", want: []string{"OK dkim-ok", "OK dkim-ok"}, text: "rsa._domainkey.example.test (rsa-sha256, 2048-bit) publishes the key in "},
		{name: "t=y", edit: withTag("t=y"), want: []string{"WARN dkim-testing", "OK dkim-ok"}, text: "remove t=y once mail verifies"},
		{name: "another key", edit: func(z *resolvetest.Resolver) { z.TXT[rsaName] = []string{other} },
			want: []string{"ERROR dkim-mismatch", "OK dkim-ok"},
			text: "publish the record `smarthost dkim record -domain example.test -selector rsa -key " + keys[0].File + "` prints"},
		{name: "revoked", edit: func(z *resolvetest.Resolver) { z.TXT[rsaName] = []string{"v=DKIM1; k=rsa; p="} },
			want: []string{"ERROR dkim-mismatch", "OK dkim-ok"}, text: "empty p="},
		{name: "not published", edit: func(z *resolvetest.Resolver) { delete(z.TXT, rsaName) },
			want: []string{"ERROR dkim-not-published", "OK dkim-ok"}, text: "no TXT record"},
		{name: "no p=", edit: func(z *resolvetest.Resolver) { z.TXT[rsaName] = []string{"v=DKIM1; k=rsa"} },
			want: []string{"ERROR dkim-invalid", "OK dkim-ok"}, text: "no p= tag"},
		{name: "timeout", edit: func(z *resolvetest.Resolver) { z.Timeout[rsaName] = true },
			want: []string{"ERROR dns-temporary", "OK dkim-ok"}, text: "lookup of TXT rsa._domainkey.example.test failed (i/o timeout)"},
		{name: "no key for the domain", domain: "third.test", want: []string{"WARN dkim-no-key"},
			text: "smarthost dkim keygen -domain third.test"},
		{name: "Ed25519 only", domain: "other.test", edit: func(z *resolvetest.Resolver) {
			z.TXT[keys[2].Name()] = []string{keys[2].Record().String()}
		}, want: []string{"OK dkim-ok", "WARN dkim-no-rsa"}, text: "(ed25519-sha256, 256-bit)"},
	})
}

func TestDNSErrorText_KeepsTheReason(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"lookup rsa._domainkey.example.test on 10.0.0.1:53: server misbehaving", "server misbehaving"},
		{"lookup x.example.test: i/o timeout", "i/o timeout"},
		{"refused", "refused"},
	}
	for _, tt := range tests {
		if got := dnsErrorText(tt.in).Error(); got != tt.want {
			t.Errorf("dnsErrorText(%q).Error() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
