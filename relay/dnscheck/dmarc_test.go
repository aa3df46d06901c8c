package dnscheck

import (
	"slices"
	"strings"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheck_DMARC(t *testing.T) {
	t.Parallel()
	keys := newKeys(t,
		keySpec{domain: testDomain, selector: "sel", kind: dkim.KindEd25519, sign: []string{"*@example.test", "*@*.example.test"}},
		keySpec{domain: "signer.test", selector: "sel", kind: dkim.KindEd25519, sign: []string{"*@foreign.test"}},
	)
	dmarc := func(records ...string) func(z *resolvetest.Resolver) {
		return func(z *resolvetest.Resolver) { z.TXT["_dmarc."+testDomain] = records }
	}
	aligned := []string{"OK dmarc-dkim-aligned", "INFO dmarc-spf-alignment"}
	good := func(ids ...string) []string { return append(append([]string{"OK dmarc-record"}, ids...), aligned...) }
	runZoneCases(t, CheckDMARC, keys, []zoneCase{
		{name: "reject with reports", want: good("OK dmarc-policy", "OK dmarc-rua"), text: "policy reject: receivers refuse"},
		{name: "quarantine", edit: dmarc("v=DMARC1; p=quarantine; rua=mailto:d@example.test"), want: good("OK dmarc-policy", "OK dmarc-rua")},
		{name: "missing", edit: func(z *resolvetest.Resolver) { delete(z.TXT, "_dmarc."+testDomain) },
			want: []string{"ERROR dmarc-missing"}, text: `"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.test"`},
		{name: "only other TXT records", edit: dmarc("v=spf1 -all"), want: []string{"ERROR dmarc-missing"}},
		{name: "two records", edit: dmarc("v=DMARC1; p=none", "v=DMARC1; p=reject"), want: []string{"ERROR dmarc-multiple"}},
		{name: "lookup fails", edit: func(z *resolvetest.Resolver) { z.ServFail["_dmarc."+testDomain] = true },
			want: []string{"ERROR dns-temporary"}},
		{name: "p=none", edit: dmarc("v=DMARC1; p=none; rua=mailto:d@example.test"), want: good("WARN dmarc-policy-none", "OK dmarc-rua")},
		{name: "pct=50", edit: dmarc("v=DMARC1; p=reject; pct=50; rua=mailto:d@example.test"),
			want: good("OK dmarc-policy", "WARN dmarc-pct", "OK dmarc-rua"), text: "50% of failing mail"},
		{name: "no rua", edit: dmarc("v=DMARC1; p=reject; ruf=mailto:f@example.test"), want: good("OK dmarc-policy", "WARN dmarc-no-rua")},
		{name: "external rua without consent", edit: dmarc("v=DMARC1; p=reject; rua=mailto:d@reports.test!10m"),
			want: good("OK dmarc-policy", "WARN dmarc-rua-unauthorised", "OK dmarc-rua"),
			text: "`example.test._report._dmarc.reports.test. IN TXT \"v=DMARC1\"`"},
		{name: "external rua with consent", edit: func(z *resolvetest.Resolver) {
			dmarc("v=DMARC1; p=reject; rua=mailto:d@reports.test")(z)
			z.TXT["example.test._report._dmarc.reports.test"] = []string{"v=DMARC1"}
		}, want: good("OK dmarc-policy", "OK dmarc-rua")},
		{name: "bad policy", edit: dmarc("v=DMARC1; p=block; rua=mailto:d@example.test"),
			want: good("ERROR dmarc-syntax", "OK dmarc-rua"), text: "p=block is not none, quarantine or reject"},
		{name: "no p=", edit: dmarc("v=DMARC1; rua=mailto:d@example.test"), want: good("ERROR dmarc-syntax", "OK dmarc-rua")},
		// The organizational domain's record applies to a subdomain, with
		// its sp=; the key for *@*.example.test aligns under adkim=r.
		{name: "inherited with sp=", domain: "sub.example.test", edit: dmarc("v=DMARC1; p=reject; sp=none; rua=mailto:d@example.test"),
			want: good("WARN dmarc-policy-none", "OK dmarc-rua"), text: "the organizational domain's record; sp= applies to sub.example.test"},
		{name: "subdomain's own record wins", domain: "sub.example.test", edit: func(z *resolvetest.Resolver) {
			z.TXT["_dmarc.sub.example.test"] = []string{"v=DMARC1; p=quarantine; rua=mailto:d@example.test"}
		}, want: good("OK dmarc-policy", "OK dmarc-rua"), text: "_dmarc.sub.example.test:"},
		{name: "strict alignment fails for a subdomain", domain: "sub.example.test", edit: dmarc("v=DMARC1; p=reject; adkim=s; rua=mailto:d@example.test"),
			want: []string{"OK dmarc-record", "OK dmarc-policy", "OK dmarc-rua", "ERROR dmarc-dkim-unaligned", "INFO dmarc-spf-alignment"},
			text: "do not align with it under adkim=s"},
		{name: "key of another domain", domain: "foreign.test", edit: func(z *resolvetest.Resolver) {
			z.TXT["_dmarc.foreign.test"] = []string{"v=DMARC1; p=none; rua=mailto:d@foreign.test"}
		}, want: []string{"OK dmarc-record", "WARN dmarc-policy-none", "OK dmarc-rua", "WARN dmarc-dkim-unaligned", "INFO dmarc-spf-alignment"},
			text: "(d=signer.test)"},
		{name: "no key", domain: "nokey.test", edit: func(z *resolvetest.Resolver) {
			z.TXT["_dmarc.nokey.test"] = []string{"v=DMARC1; p=reject; aspf=s; rua=mailto:d@nokey.test"}
		}, want: []string{"OK dmarc-record", "OK dmarc-policy", "OK dmarc-rua", "ERROR dmarc-dkim-unaligned", "INFO dmarc-spf-alignment"},
			text: "(MAIL FROM) is at nokey.test (aspf=s)"},
	})
}

func TestParseDMARC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		record   string
		policy   dmarcPolicy
		adkim    alignment
		pct      int
		rua      []string
		problems []string // substrings, in order
	}{
		{"v=DMARC1; p=reject", "reject", "r", 100, nil, nil},
		{"v=DMARC1;p=Quarantine;adkim=S;pct=20;", "quarantine", "s", 20, nil, nil},
		{"v=DMARC1; p=none; rua=mailto:a@example.com!10m, mailto:b@example.net", "none", "r", 100,
			[]string{"mailto:a@example.com", "mailto:b@example.net"}, nil},
		{"v=DMARC1; p=none; rua=https://reports.example.com/", "none", "r", 100, []string{"https://reports.example.com/"}, nil},
		{"v=DMARC1; p=none; unknown=tag", "none", "r", 100, nil, nil},
		{"v=DMARC1; p=none; fo=1:d; ri=3600", "none", "r", 100, nil, nil},
		{"v=DMARC1", "", "r", 100, nil, []string{"no p= tag"}},
		{"v=DMARC1; p=reject; p=none", "reject", "r", 100, nil, []string{"p= is given twice"}},
		{"v=DMARC1; p=reject; pct=150", "reject", "r", 100, nil, []string{"pct=150"}},
		{"v=DMARC1; p=reject; adkim=x", "reject", "r", 100, nil, []string{"adkim=x is not r (relaxed) or s (strict)"}},
		{"v=DMARC1; p=reject; rua=dmarc@example.com", "reject", "r", 100, nil, []string{`"dmarc@example.com" is not a URI`}},
		{"v=DMARC1; p=reject; rua=mailto:", "reject", "r", 100, nil, []string{"is not a URI"}},
		{"v=DMARC1; p=reject; rua=mailto:not an address", "reject", "r", 100, nil, []string{"not a mailto: URI"}},
		{"v=DMARC1; p=reject; fo=2", "reject", "r", 100, nil, []string{"fo=2"}},
		{"v=DMARC1; p=reject; junk", "reject", "r", 100, nil, []string{`"junk" is not tag=value`}},
	}
	for _, tt := range tests {
		got := parseDMARC(tt.record)
		if got.policy != tt.policy || got.adkim != tt.adkim || got.pct != tt.pct || !slices.Equal(got.rua, tt.rua) {
			t.Errorf("parseDMARC(%q) = p=%q adkim=%q pct=%d rua=%q; want %q %q %d %q", tt.record, got.policy, got.adkim, got.pct, got.rua, tt.policy, tt.adkim, tt.pct, tt.rua)
		}
		ok := len(got.problems) == len(tt.problems)
		for i := 0; ok && i < len(tt.problems); i++ {
			ok = strings.Contains(got.problems[i], tt.problems[i])
		}
		if !ok {
			t.Errorf("parseDMARC(%q) problems = %q, want %q", tt.record, got.problems, tt.problems)
		}
	}
}

func TestAlignedDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		auth, from string
		mode       alignment
		want       bool
	}{
		{"example.com", "example.com", "s", true},
		{"Example.COM.", "example.com", "s", true},
		{"example.com", "sub.example.com", "s", false},
		{"example.com", "sub.example.com", "r", true},
		{"mail.example.com", "sub.example.com", "r", true},
		{"example.net", "example.com", "r", false},
		// Public suffixes: a.co.uk and b.co.uk are different organizations.
		{"a.co.uk", "b.co.uk", "r", false},
		{"x.a.co.uk", "a.co.uk", "r", true},
	}
	for _, tt := range tests {
		if got := alignedDomain(tt.auth, tt.from, tt.mode); got != tt.want {
			t.Errorf("alignedDomain(%q, %q, %q) = %v, want %v", tt.auth, tt.from, tt.mode, got, tt.want)
		}
	}
}
