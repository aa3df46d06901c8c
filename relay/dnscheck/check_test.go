package dnscheck

import (
	"context"
	"slices"
	"strings"
	"testing"

	"smarthost/relay/dkim"
)

func TestCheck_GoodDomainHasNoProblems(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, keySpec{domain: testDomain, selector: "sel", kind: dkim.KindRSA2048})
	rep := check(t, goodZone(keys), keys, testDomain)
	var got []string
	for _, f := range rep.Findings {
		got = append(got, string(f.Level)+" "+string(f.Check)+" "+f.ID)
	}
	want := []string{
		"OK MX mx-host",
		"OK MX mx-here",
		"OK SPF spf-record",
		"OK SPF spf-lookups",
		"OK SPF spf-all",
		"OK SPF spf-authorised",
		"OK SPF spf-authorised",
		"OK DKIM dkim-ok",
		"OK DMARC dmarc-record",
		"OK DMARC dmarc-policy",
		"OK DMARC dmarc-rua",
		"OK DMARC dmarc-dkim-aligned",
		"INFO DMARC dmarc-spf-alignment",
		"OK PTR ptr-ok",
		"OK PTR ptr-ok",
		"OK MTA-STS mtasts-record",
		"INFO MTA-STS mtasts-not-fetched",
		"OK TLS-RPT tlsrpt-record",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings = %q\nwant %q", got, want)
	}
	if rep.Domain != testDomain || rep.Count(LevelError) != 0 || rep.Count(LevelWarn) != 0 {
		t.Errorf("report for %s has %d errors, %d warnings; want %s, none", rep.Domain, rep.Count(LevelError), rep.Count(LevelWarn), testDomain)
	}
}

func TestCheck_DomainNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"example.test", "example.test"},
		{"Example.TEST.", "example.test"},
		{" example.test ", "example.test"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"localhost", ""},
		{"", ""},
		{"exa mple.test", ""},
		{"-x.example.test", ""},
	}
	for _, tt := range tests {
		c := &Checker{Resolver: goodZone(nil)}
		rep, err := c.Check(context.Background(), tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("Check(%q) = report for %q, want an error", tt.in, rep.Domain)
		case tt.want != "" && (err != nil || rep.Domain != tt.want):
			t.Errorf("Check(%q) = report for %q, %v; want %q", tt.in, rep.Domain, err, tt.want)
		}
	}
}

func TestSigningKeys_ChoosesAsTheTableDoes(t *testing.T) {
	t.Parallel()
	keys := newKeys(t,
		keySpec{domain: "a.test", selector: "s1", kind: dkim.KindEd25519},
		keySpec{domain: "b.test", selector: "s1", kind: dkim.KindEd25519, sign: []string{"*@b.test", "*@*.b.test"}},
		keySpec{domain: "b.test", selector: "s2", kind: dkim.KindEd25519},
		keySpec{domain: "c.test", selector: "s1", kind: dkim.KindEd25519, sign: []string{"*@sub.b.test", "*@c.test"}},
		keySpec{domain: "d.test", selector: "s1", kind: dkim.KindEd25519, sign: []string{"alice@d.test"}},
	)
	tests := []struct {
		domain string
		want   []string
	}{
		{"a.test", []string{"s1._domainkey.a.test"}},
		// The first matching key decides d=; later keys of b.test that
		// match sign too.
		{"b.test", []string{"s1._domainkey.b.test", "s2._domainkey.b.test"}},
		// s2 signs only *@b.test; c.test's key matches but its domain is
		// not the one chosen.
		{"sub.b.test", []string{"s1._domainkey.b.test"}},
		{"c.test", []string{"s1._domainkey.c.test"}},
		// A key for one address still signs mail from the domain.
		{"d.test", []string{"s1._domainkey.d.test"}},
		{"e.test", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, k := range signingKeys(keys, tt.domain) {
			got = append(got, k.Name())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("signingKeys(%s) = %q, want %q", tt.domain, got, tt.want)
		}
	}
}

func TestFinding_String(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    Finding
		want string
	}{
		{Finding{Check: CheckMX, Level: LevelOK, ID: "mx-host", Text: "MX 10 mail.example.test: 192.0.2.10"},
			"OK    MX      MX 10 mail.example.test: 192.0.2.10"},
		{Finding{Check: CheckMTASTS, Level: LevelError, ID: "x", Text: "broken", Fix: "mend it"},
			"ERROR MTA-STS broken; fix: mend it"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestReport_WriteTo(t *testing.T) {
	t.Parallel()
	rep := Report{Domain: "example.test", Findings: []Finding{
		{Check: CheckSPF, Level: LevelError, ID: "spf-plus-all", Text: "+all", Fix: "use -all"},
		{Check: CheckDMARC, Level: LevelWarn, ID: "dmarc-pct", Text: "pct=50", Fix: "raise it"},
		{Check: CheckDMARC, Level: LevelWarn, ID: "dmarc-no-rua", Text: "no rua", Fix: "add it"},
		{Check: CheckPTR, Level: LevelInfo, ID: "ptr-no-hostname", Text: "no hostname"},
	}}
	var b strings.Builder
	n, err := rep.WriteTo(&b)
	want := "ERROR SPF     +all; fix: use -all\n" +
		"WARN  DMARC   pct=50; fix: raise it\n" +
		"WARN  DMARC   no rua; fix: add it\n" +
		"INFO  PTR     no hostname\n" +
		"example.test: 1 error, 2 warnings\n"
	if err != nil || b.String() != want || n != int64(len(want)) {
		t.Errorf("WriteTo = %d, %v, %q; want %d, nil, %q", n, err, b.String(), len(want), want)
	}
}

func TestLevel_Valid(t *testing.T) {
	t.Parallel()
	for _, l := range []Level{LevelOK, LevelInfo, LevelWarn, LevelError} {
		if !l.Valid() {
			t.Errorf("%q.Valid() = false, want true", l)
		}
	}
	if Level("FINE").Valid() {
		t.Error(`"FINE".Valid() = true, want false`)
	}
}

// A key covers a domain when one of its sign patterns matches some
// address there, whatever the local part.
func TestCoversDomain(t *testing.T) {
	t.Parallel()
	keys := newKeys(t, keySpec{domain: "x.test", selector: "s", kind: dkim.KindEd25519, sign: []string{"bob@x.test", "*@*.y.test"}})
	tests := []struct {
		domain string
		want   bool
	}{
		{"x.test", true},
		{"a.y.test", true},
		{"y.test", false},
		{"z.test", false},
	}
	for _, tt := range tests {
		if got := coversDomain(keys[0], tt.domain); got != tt.want {
			t.Errorf("coversDomain(%s) = %v, want %v", tt.domain, got, tt.want)
		}
	}
}
