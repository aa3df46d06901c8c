package dnscheck

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/resolve"
	"smarthost/relay/resolve/resolvetest"
)

var _ resolve.Resolver = (*resolvetest.Resolver)(nil)

// The domain the tests check, and this server.
const (
	testDomain   = "example.test"
	testHostname = "mail.example.test"
)

// keySpec describes a key newKeys makes.
type keySpec struct {
	domain, selector string
	kind             dkim.Kind
	sign             []string // sign patterns; nil means the default
}

// newKeys writes fresh keys to a temporary directory and loads them as
// the configuration would.
func newKeys(t *testing.T, specs ...keySpec) []*dkim.Key {
	t.Helper()
	dir := t.TempDir()
	var cfg config.DKIM
	for _, s := range specs {
		files, err := dkim.Keygen(dkim.KeygenOptions{Dir: dir, Domain: s.domain, Selector: s.selector, Kind: s.kind})
		if err != nil {
			t.Fatal(err)
		}
		k := config.DKIMKey{Domain: s.domain, Selector: s.selector, PrivateKey: files.PrivateKey}
		for _, p := range s.sign {
			ap, err := config.ParseAddressPattern(p)
			if err != nil {
				t.Fatal(err)
			}
			k.Sign = append(k.Sign, ap)
		}
		cfg.Keys = append(cfg.Keys, k)
	}
	tab, err := dkim.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tab.Keys()
}

// otherRecord returns a DKIM record for a key that is not on disk.
func otherRecord(t *testing.T) string {
	t.Helper()
	k, err := dkim.GenerateKey(dkim.KindEd25519)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dkim.NewRecord(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return rec.String()
}

// goodZone is the DNS of a domain set up right for smarthost: the MX and
// the hostname are this server, whose two addresses have forward-confirmed
// PTRs; SPF authorises the MX; each key is published; DMARC rejects and
// reports; MTA-STS and TLS-RPT are published.
func goodZone(keys []*dkim.Key) *resolvetest.Resolver {
	z := &resolvetest.Resolver{
		MX: map[string][]*net.MX{testDomain: {{Host: testHostname + ".", Pref: 10}}},
		IP: map[string][]netip.Addr{
			testHostname: {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
		},
		PTR: map[string][]string{
			"192.0.2.10":   {testHostname + "."},
			"2001:db8::10": {testHostname + "."},
		},
		TXT: map[string][]string{
			testDomain:                 {"v=spf1 mx -all", "google-site-verification=abc"},
			"_dmarc." + testDomain:     {"v=DMARC1; p=reject; rua=mailto:dmarc@example.test"},
			"_mta-sts." + testDomain:   {"v=STSv1; id=20260101"},
			"_smtp._tls." + testDomain: {"v=TLSRPTv1; rua=mailto:tls@example.test"},
		},
		NXDomain: map[string]bool{},
		ServFail: map[string]bool{},
		Timeout:  map[string]bool{},
	}
	for _, k := range keys {
		z.TXT[k.Name()] = []string{k.Record().String()}
	}
	return z
}

// check runs a Checker for this server over z and fails the test if the
// domain is refused.
func check(t *testing.T, z *resolvetest.Resolver, keys []*dkim.Key, domain string) Report {
	t.Helper()
	c := &Checker{Resolver: z, Hostname: testHostname, Keys: keys}
	rep, err := c.Check(context.Background(), domain)
	if err != nil {
		t.Fatalf("Check(%q): %v", domain, err)
	}
	return rep
}

// levelIDs returns the findings of one check as "LEVEL id" strings, in
// order: the shape the tables below state their expectations in.
func levelIDs(rep Report, c Check) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Check == c {
			out = append(out, string(f.Level)+" "+f.ID)
		}
	}
	return out
}

// findings returns the findings of one check, for messages.
func findings(rep Report, c Check) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		if f.Check == c {
			b.WriteString("\n\t" + f.String())
		}
	}
	return b.String()
}

// zoneCase is a table row of the per-check tests: an edit of the good
// zone and the findings of one check it must produce.
type zoneCase struct {
	name   string
	domain string // "" means testDomain
	edit   func(z *resolvetest.Resolver)
	want   []string // "LEVEL id", in order
	// text, if set, must occur in the text or fix of some finding of the
	// check.
	text string
}

// runZoneCases runs each case against a fresh good zone.
func runZoneCases(t *testing.T, c Check, keys []*dkim.Key, tests []zoneCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := goodZone(keys)
			if tt.edit != nil {
				tt.edit(z)
			}
			domain := tt.domain
			if domain == "" {
				domain = testDomain
			}
			rep := check(t, z, keys, domain)
			if got := levelIDs(rep, c); !slices.Equal(got, tt.want) {
				t.Errorf("%s findings = %q, want %q; report:%s", c, got, tt.want, findings(rep, c))
			}
			if tt.text != "" && !strings.Contains(findings(rep, c), tt.text) {
				t.Errorf("%s findings do not mention %q; report:%s", c, tt.text, findings(rep, c))
			}
			for _, f := range rep.Findings {
				if (f.Level == LevelWarn || f.Level == LevelError) && f.Fix == "" {
					t.Errorf("finding %q has no fix", f)
				}
			}
		})
	}
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}
