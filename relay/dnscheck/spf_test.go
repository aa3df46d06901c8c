package dnscheck

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheck_SPF(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, keySpec{domain: testDomain, selector: "sel", kind: dkim.KindEd25519})
	spf := func(records ...string) func(z *resolvetest.Resolver) {
		return func(z *resolvetest.Resolver) { z.TXT[testDomain] = records }
	}
	authorised := []string{"OK spf-authorised", "OK spf-authorised"}
	withAuth := func(ids ...string) []string { return append(ids, authorised...) }
	// nine returns nine a: terms, each for a host it adds to z.
	nine := func(z *resolvetest.Resolver) string {
		var terms []string
		for i := 1; i <= 9; i++ {
			terms = append(terms, fmt.Sprintf("a:h%d.example.test", i))
			z.IP[fmt.Sprintf("h%d.example.test", i)] = addrs(fmt.Sprintf("198.51.100.%d", i))
		}
		return strings.Join(terms, " ")
	}
	runZoneCases(t, CheckSPF, keys, []zoneCase{
		{name: "mx -all", want: withAuth("OK spf-record", "OK spf-lookups", "OK spf-all"), text: "1 of 10 DNS lookups, 0 of 2 void lookups"},
		{name: "~all", edit: spf("v=spf1 mx ~all"), want: withAuth("OK spf-record", "OK spf-lookups", "OK spf-all"), text: "~all"},
		{name: "+all", edit: spf("v=spf1 +all"), want: withAuth("OK spf-record", "OK spf-lookups", "ERROR spf-plus-all")},
		{name: "all without qualifier is +all", edit: spf("v=spf1 mx all"), want: withAuth("OK spf-record", "OK spf-lookups", "ERROR spf-plus-all")},
		{name: "?all", edit: spf("v=spf1 mx ?all"), want: withAuth("OK spf-record", "OK spf-lookups", "WARN spf-neutral-all")},
		{name: "no all", edit: spf("v=spf1 mx"), want: withAuth("OK spf-record", "OK spf-lookups", "WARN spf-no-all")},
		{name: "missing", edit: spf("google-site-verification=abc"), want: []string{"ERROR spf-missing"}, text: `"v=spf1 a:mail.example.test -all"`},
		{name: "NXDOMAIN", edit: func(z *resolvetest.Resolver) { delete(z.TXT, testDomain) }, want: []string{"ERROR spf-missing"}},
		{name: "two records", edit: spf("v=spf1 mx -all", "v=spf1 a -all"), want: []string{"ERROR spf-multiple"}},
		{name: "v=spf10 is not SPF", edit: spf("v=spf10 mx -all"), want: []string{"ERROR spf-missing"}},
		{name: "TXT lookup fails", edit: func(z *resolvetest.Resolver) { z.Timeout[testDomain] = true }, want: []string{"ERROR dns-temporary"}},
		{name: "does not authorise this server", edit: spf("v=spf1 ip4:198.51.100.1 -all"),
			want: []string{"OK spf-record", "OK spf-lookups", "OK spf-all", "ERROR spf-not-authorised", "ERROR spf-not-authorised"},
			text: "add ip6:2001:db8::10 (or a:mail.example.test)"},
		{name: "authorises by ip4 and ip6", edit: spf("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all"),
			want: withAuth("OK spf-record", "OK spf-lookups", "OK spf-all"), text: "0 of 10 DNS lookups"},
		{name: "too many lookups", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 include:_spf.example.test mx -all"}
			z.TXT["_spf.example.test"] = []string{"v=spf1 " + nine(z) + " -all"}
		}, want: []string{"OK spf-record", "ERROR spf-too-many-lookups", "OK spf-all", "ERROR spf-permerror", "ERROR spf-permerror"},
			text: "11 DNS lookups"},
		// A host matched before the limit still passes, as with receivers.
		{name: "too many lookups, this server first", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 mx include:_spf.example.test -all"}
			z.TXT["_spf.example.test"] = []string{"v=spf1 " + nine(z) + " -all"}
		}, want: withAuth("OK spf-record", "ERROR spf-too-many-lookups", "OK spf-all")},
		{name: "ten lookups are allowed", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 " + nine(z) + " mx -all"}
		}, want: withAuth("OK spf-record", "OK spf-lookups", "OK spf-all"), text: "10 of 10 DNS lookups"},
		{name: "too many void lookups", edit: spf("v=spf1 a:gone1.example.test mx:gone2.example.test a:gone3.example.test mx -all"),
			want: []string{"OK spf-record", "ERROR spf-too-many-void", "OK spf-all", "ERROR spf-permerror", "ERROR spf-permerror"},
			text: "3 lookups find no record (a:gone1.example.test mx:gone2.example.test a:gone3.example.test)"},
		{name: "bad ip4", edit: spf("v=spf1 ip4:192.0.2.300 mx -all"),
			want: []string{"OK spf-record", "ERROR spf-syntax", "OK spf-lookups", "OK spf-all", "ERROR spf-permerror", "ERROR spf-permerror"},
			text: `"ip4:192.0.2.300": "192.0.2.300" is not an IP address`},
		{name: "include= typo", edit: spf("v=spf1 include=_spf.example.test mx -all"),
			want: withAuth("OK spf-record", "ERROR spf-syntax", "OK spf-lookups", "OK spf-all"), text: "write include:_spf.example.test"},
		{name: "include of a domain without SPF", edit: spf("v=spf1 include:nothing.example.test mx -all"),
			want: []string{"OK spf-record", "ERROR spf-target-missing", "OK spf-lookups", "OK spf-all", "ERROR spf-permerror", "ERROR spf-permerror"}},
		{name: "include with two records", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 mx include:two.example.test -all"}
			z.TXT["two.example.test"] = []string{"v=spf1 -all", "v=spf1 ~all"}
		}, want: withAuth("OK spf-record", "ERROR spf-target-multiple", "OK spf-lookups", "OK spf-all")},
		{name: "include with a syntax error", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 mx include:bad.example.test -all"}
			z.TXT["bad.example.test"] = []string{"v=spf1 ip4:10.0.0.0/40 -all"}
		}, want: withAuth("OK spf-record", "ERROR spf-target-syntax", "OK spf-lookups", "OK spf-all"), text: "bad CIDR length /40"},
		// c.example.test is reached twice: counted twice, reported once.
		{name: "a record reached twice", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 mx include:a.example.test include:c.example.test -all"}
			z.TXT["a.example.test"] = []string{"v=spf1 include:c.example.test -all"}
			z.TXT["c.example.test"] = []string{"v=spf1 ip4:10.0.0.0/40 a:gone.example.test -all"}
		}, want: withAuth("OK spf-record", "ERROR spf-target-syntax", "OK spf-lookups", "OK spf-all"),
			text: "6 of 10 DNS lookups, 2 of 2 void lookups"},
		{name: "void lookups in an included record", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 mx include:c.example.test -all"}
			z.TXT["c.example.test"] = []string{"v=spf1 a:gone.example.test a:gone2.example.test a mx -all"}
		}, want: withAuth("OK spf-record", "ERROR spf-too-many-void", "OK spf-all"),
			text: "4 lookups find no record (a:gone.example.test (in c.example.test) a:gone2.example.test (in c.example.test) a (in c.example.test) mx (in c.example.test))"},
		{name: "include lookup fails", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 include:slow.example.test mx -all"}
			z.ServFail["slow.example.test"] = true
		}, want: []string{"OK spf-record", "ERROR dns-temporary", "OK spf-lookups", "OK spf-all", "ERROR dns-temporary", "ERROR dns-temporary"}},
		{name: "include loop", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 include:loop.example.test mx -all"}
			z.TXT["loop.example.test"] = []string{"v=spf1 include:example.test -all"}
		}, want: []string{"OK spf-record", "ERROR spf-loop", "OK spf-lookups", "OK spf-all", "ERROR spf-permerror", "ERROR spf-permerror"},
			text: "example.test → loop.example.test → example.test"},
		{name: "ptr", edit: spf("v=spf1 ptr -all"), want: withAuth("OK spf-record", "WARN spf-ptr", "OK spf-lookups", "OK spf-all")},
		{name: "terms after all", edit: spf("v=spf1 -all mx"),
			want: []string{"OK spf-record", "WARN spf-after-all", "OK spf-lookups", "OK spf-all", "ERROR spf-not-authorised", "ERROR spf-not-authorised"}},
		{name: "redirect decides the all", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 redirect=_spf.example.test"}
			z.TXT["_spf.example.test"] = []string{"v=spf1 mx:example.test ~all"}
		}, want: withAuth("OK spf-record", "OK spf-lookups", "OK spf-all"), text: "2 of 10 DNS lookups"},
		// RFC 7208 §6.1: after a redirect, "mx" means the target's MX.
		{name: "redirect changes the domain", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 redirect=_spf.example.test"}
			z.TXT["_spf.example.test"] = []string{"v=spf1 mx -all"}
		}, want: []string{"OK spf-record", "OK spf-lookups", "OK spf-all", "ERROR spf-not-authorised", "ERROR spf-not-authorised"},
			text: "2 of 10 DNS lookups, 1 of 2 void lookups"},
		{name: "redirect beside all is ignored", edit: spf("v=spf1 mx redirect=_spf.example.test -all"),
			want: withAuth("OK spf-record", "WARN spf-redirect-ignored", "OK spf-lookups", "OK spf-all"), text: "1 of 10 DNS lookups"},
		{name: "macros are counted, not followed", edit: spf("v=spf1 exists:%{i}._spf.example.test mx -all"),
			want: withAuth("OK spf-record", "OK spf-lookups", "OK spf-all"), text: "2 of 10 DNS lookups, 0 of 2 void lookups; counted but not followed, as they depend on the message: exists:%{i}._spf.example.test"},
		{name: "mx with too many names", edit: func(z *resolvetest.Resolver) {
			z.TXT[testDomain] = []string{"v=spf1 mx mx:big.example.test -all"}
			for i := range 11 {
				z.MX["big.example.test"] = append(z.MX["big.example.test"], &net.MX{Host: fmt.Sprintf("m%d.example.test.", i), Pref: 10})
			}
		}, want: withAuth("OK spf-record", "ERROR spf-mx-too-many", "OK spf-lookups", "OK spf-all")},
		{name: "hostname without address", edit: func(z *resolvetest.Resolver) { delete(z.IP, testHostname) },
			want: []string{"OK spf-record", "OK spf-lookups", "OK spf-all", "INFO spf-host-unknown"}},
	})
}

func TestParseSPFTerm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		term    string
		name    string
		arg     string
		problem string // substring; "" means valid
	}{
		{"a", "a", "", ""},
		{"-a/24", "a", "", ""},
		{"a:mail.example.com/24//64", "a", "mail.example.com", ""},
		{"a//64", "a", "", ""},
		{"a/33", "a", "", "bad CIDR length /33"},
		{"a/abc", "a", "/abc", "bad CIDR length /abc"},
		{"a:", "a", "", "needs a domain"},
		{"a:192.0.2.1", "a", "192.0.2.1", "use ip4:192.0.2.1"},
		{"a:localhost", "a", "localhost", "not a fully qualified domain"},
		{"mx:example.com", "mx", "example.com", ""},
		{"~mx", "mx", "", ""},
		{"ptr", "ptr", "", ""},
		{"ptr:example.com", "ptr", "example.com", ""},
		{"ptr/24", "ptr", "", "no CIDR length"},
		{"ip4:192.0.2.0/24", "ip4", "192.0.2.0/24", ""},
		{"ip4:192.0.2.0/33", "ip4", "192.0.2.0/33", "bad CIDR length /33"},
		{"ip4:2001:db8::1", "ip4", "2001:db8::1", "write ip6:2001:db8::1"},
		{"ip6:2001:db8::/32", "ip6", "2001:db8::/32", ""},
		{"ip6:2001:db8::/129", "ip6", "2001:db8::/129", "bad CIDR length"},
		{"ip6:192.0.2.1", "ip6", "192.0.2.1", "write ip4:192.0.2.1"},
		{"ip4", "ip4", "", "needs an address"},
		{"include:_spf.example.com", "include", "_spf.example.com", ""},
		{"include:", "include", "", "needs a domain"},
		{"include:example.123", "include", "example.123", "not a top-level label"},
		{"include=_spf.example.com", "include", "_spf.example.com", "write include:_spf.example.com"},
		{"exists:%{i}.%{v}._spf.%{d2}", "exists", "%{i}.%{v}._spf.%{d2}", ""},
		{"exists:%{ir}.%{l1r+-}.example.com", "exists", "%{ir}.%{l1r+-}.example.com", ""},
		{"exists:%{z}.example.com", "exists", "%{z}.example.com", "bad macro"},
		{"exists:%{c}.example.com", "exists", "%{c}.example.com", "bad macro"},
		{"exists:%{i.example.com", "exists", "%{i.example.com", "unclosed macro"},
		{"exists:100%.example.com", "exists", "100%.example.com", "bad macro %."},
		{"all", "all", "", ""},
		{"-all", "all", "", ""},
		{"all:example.com", "all", "", "all takes no argument"},
		{"redirect=_spf.example.com", "redirect", "_spf.example.com", ""},
		{"exp=explain.%{d}", "exp", "explain.%{d}", ""},
		{"exp=%{c}.example.com", "exp", "%{c}.example.com", ""},
		{"moo=bar", "moo", "bar", ""},
		{"1x=bar", "1x", "bar", "not a mechanism or a modifier"},
		{"foo", "foo", "", "unknown mechanism"},
		{"spf2.0/pra", "spf2.0", "", "unknown mechanism"},
	}
	for _, tt := range tests {
		got, problem := parseSPFTerm(tt.term)
		if got.name != tt.name || got.arg != tt.arg {
			t.Errorf("parseSPFTerm(%q) = name %q, arg %q; want %q, %q", tt.term, got.name, got.arg, tt.name, tt.arg)
		}
		if tt.problem == "" && problem != "" || tt.problem != "" && !strings.Contains(problem, tt.problem) {
			t.Errorf("parseSPFTerm(%q) problem = %q, want %q", tt.term, problem, tt.problem)
		}
	}
}

func TestParseSPF_RecordLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		record   string
		problems int
		all      byte // 0: none
	}{
		{"v=spf1 mx -all", 0, '-'},
		{"V=SPF1 MX ~ALL", 0, '~'},
		{"v=spf1  mx   ?all ", 0, '?'},
		{"v=spf1 redirect=a.example redirect=b.example", 1, 0},
		{"v=spf1 exp=a.example exp=b.example -all", 1, '-'},
		{"v=spf1 foo bar -all", 2, '-'},
	}
	for _, tt := range tests {
		rec := parseSPF(tt.record)
		all, _ := rec.all()
		if len(rec.problems) != tt.problems || all.qualifier != tt.all {
			t.Errorf("parseSPF(%q) = %d problems %q, all %q; want %d, %q", tt.record, len(rec.problems), rec.problems, all.qualifier, tt.problems, tt.all)
		}
	}
	for _, s := range []string{"v=spf1", "v=spf1 -all", "V=SPF1 mx"} {
		if !isSPF1(s) {
			t.Errorf("isSPF1(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"v=spf10", "v=spf", "spf1", "v=DMARC1; p=none", ""} {
		if isSPF1(s) {
			t.Errorf("isSPF1(%q) = true, want false", s)
		}
	}
}
