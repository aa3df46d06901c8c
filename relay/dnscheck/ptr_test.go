package dnscheck

import (
	"context"
	"slices"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheck_PTR(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, keySpec{domain: testDomain, selector: "sel", kind: dkim.KindEd25519})
	runZoneCases(t, CheckPTR, keys, []zoneCase{
		{name: "forward-confirmed", want: []string{"OK ptr-ok", "OK ptr-ok"}, text: "192.0.2.10 → mail.example.test → 192.0.2.10"},
		{name: "one of several names", edit: func(z *resolvetest.Resolver) {
			z.PTR["192.0.2.10"] = []string{"vps-1.provider.test.", testHostname + "."}
			z.IP["vps-1.provider.test"] = addrs("192.0.2.10")
		}, want: []string{"OK ptr-ok", "OK ptr-ok"}},
		{name: "IPv6 without PTR", edit: func(z *resolvetest.Resolver) { delete(z.PTR, "2001:db8::10") },
			want: []string{"OK ptr-ok", "ERROR ptr-missing"}, text: "set the reverse DNS (PTR) of 2001:db8::10 to mail.example.test"},
		{name: "provider's name", edit: func(z *resolvetest.Resolver) {
			z.PTR["192.0.2.10"] = []string{"vps-1.provider.test."}
			z.IP["vps-1.provider.test"] = addrs("192.0.2.10")
		}, want: []string{"WARN ptr-other-name", "OK ptr-ok"}, text: "or set hostname = vps-1.provider.test"},
		{name: "not confirmed", edit: func(z *resolvetest.Resolver) {
			z.PTR["192.0.2.10"] = []string{"vps-1.provider.test."}
			z.IP["vps-1.provider.test"] = addrs("198.51.100.99")
		}, want: []string{"ERROR ptr-unconfirmed", "OK ptr-ok"}, text: "does not resolve back to 192.0.2.10"},
		{name: "PTR name does not exist", edit: func(z *resolvetest.Resolver) { z.PTR["192.0.2.10"] = []string{"gone.provider.test."} },
			want: []string{"ERROR ptr-unconfirmed", "OK ptr-ok"}},
		{name: "PTR lookup fails", edit: func(z *resolvetest.Resolver) { z.ServFail["192.0.2.10"] = true },
			want: []string{"ERROR dns-temporary", "OK ptr-ok"}, text: "lookup of PTR 192.0.2.10 failed"},
		{name: "forward lookup fails", edit: func(z *resolvetest.Resolver) {
			z.PTR["192.0.2.10"] = []string{"slow.provider.test."}
			z.Timeout["slow.provider.test"] = true
		}, want: []string{"ERROR dns-temporary", "OK ptr-ok"}},
		{name: "hostname without address", edit: func(z *resolvetest.Resolver) { delete(z.IP, testHostname) },
			want: []string{"ERROR host-unresolved"}},
		{name: "hostname lookup fails", edit: func(z *resolvetest.Resolver) { z.ServFail[testHostname] = true },
			want: []string{"ERROR dns-temporary"}},
	})
}

func TestCheck_NoHostname(t *testing.T) {
	t.Parallel()
	c := &Checker{Resolver: goodZone(nil)}
	rep, err := c.Check(context.Background(), testDomain)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Check][]string{
		CheckPTR: {"INFO ptr-no-hostname"},
		CheckMX:  {"OK mx-host"},
		CheckSPF: {"OK spf-record", "OK spf-lookups", "OK spf-all", "INFO spf-host-unknown"},
	}
	for c, w := range want {
		if got := levelIDs(rep, c); !slices.Equal(got, w) {
			t.Errorf("%s findings without a hostname = %q, want %q", c, got, w)
		}
	}
}
