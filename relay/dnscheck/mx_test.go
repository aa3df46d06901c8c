package dnscheck

import (
	"net"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheck_MX(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, keySpec{domain: testDomain, selector: "sel", kind: dkim.KindEd25519})
	mx := func(hosts ...string) func(z *resolvetest.Resolver) {
		return func(z *resolvetest.Resolver) {
			z.MX[testDomain] = nil
			for i, h := range hosts {
				z.MX[testDomain] = append(z.MX[testDomain], &net.MX{Host: h, Pref: uint16(10 * (i + 1))})
			}
		}
	}
	runZoneCases(t, CheckMX, keys, []zoneCase{
		{name: "this server by name", want: []string{"OK mx-host", "OK mx-here"}},
		{name: "this server by address", edit: func(z *resolvetest.Resolver) {
			mx("mx1.example.test.")(z)
			z.IP["mx1.example.test"] = addrs("192.0.2.10")
		}, want: []string{"OK mx-host", "OK mx-here"}, text: "192.0.2.10 is an address of mail.example.test"},
		{name: "sorted by preference", edit: func(z *resolvetest.Resolver) {
			z.MX[testDomain] = []*net.MX{{Host: "backup.example.test.", Pref: 20}, {Host: testHostname + ".", Pref: 5}}
			z.IP["backup.example.test"] = addrs("198.51.100.7")
		}, want: []string{"OK mx-host", "OK mx-here", "OK mx-host"}, text: "MX 5 mail.example.test"},
		{name: "elsewhere", edit: func(z *resolvetest.Resolver) {
			mx("mx.elsewhere.test.")(z)
			z.IP["mx.elsewhere.test"] = addrs("198.51.100.1")
		}, want: []string{"OK mx-host", "WARN mx-not-here"}, text: "`example.test. IN MX 10 mail.example.test.`"},
		{name: "no MX, an address", edit: func(z *resolvetest.Resolver) {
			delete(z.MX, testDomain)
			z.IP[testDomain] = addrs("198.51.100.2")
		}, want: []string{"WARN mx-implicit"}, text: "198.51.100.2"},
		{name: "no MX, no address", edit: func(z *resolvetest.Resolver) { delete(z.MX, testDomain) },
			want: []string{"ERROR mx-missing"}},
		{name: "no MX, address lookup fails", edit: func(z *resolvetest.Resolver) {
			delete(z.MX, testDomain)
			z.ServFail[testDomain] = true
		}, want: []string{"ERROR dns-temporary"}},
		{name: "null MX", edit: mx("."), want: []string{"WARN mx-null"}, text: "RFC 7505"},
		{name: "null MX beside others", edit: mx(testHostname, "."), want: []string{"ERROR mx-null-mixed"}},
		{name: "host without address", edit: mx("gone.example.test."),
			want: []string{"ERROR mx-host-unresolved", "WARN mx-not-here"}},
		{name: "host is an address", edit: mx("192.0.2.10"),
			want: []string{"ERROR mx-host-address", "WARN mx-not-here"}},
		{name: "MX lookup fails", edit: func(z *resolvetest.Resolver) { z.ServFail[testDomain] = true },
			want: []string{"ERROR dns-temporary"}, text: "lookup of MX example.test failed (server misbehaving)"},
		// A host that could not be looked up may be this server: no
		// "not here" then.
		{name: "host lookup times out", edit: func(z *resolvetest.Resolver) {
			mx("slow.example.test.")(z)
			z.Timeout["slow.example.test"] = true
		}, want: []string{"ERROR dns-temporary"}, text: "(i/o timeout)"},
	})
}
