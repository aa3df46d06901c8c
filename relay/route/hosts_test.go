package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"smarthost/config"
	"smarthost/relay/resolve"
	"smarthost/relay/resolve/resolvetest"
)

var _ resolve.Resolver = (*resolvetest.Resolver)(nil)

// reverse is a deterministic Shuffle: it reverses each run, so a test sees
// both that equal preferences are shuffled and that nothing else is.
func reverse(n int, swap func(i, j int)) {
	for i := 0; i < n/2; i++ {
		swap(i, n-1-i)
	}
}

func ips(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func fakeDNS() *resolvetest.Resolver {
	return &resolvetest.Resolver{
		MX: map[string][]*net.MX{
			"example.test":               {{Host: "mx20.example.test.", Pref: 20}, {Host: "mx10.example.test.", Pref: 10}},
			"equal.example.test":         {{Host: "a.example.test.", Pref: 10}, {Host: "b.example.test.", Pref: 10}, {Host: "c.example.test.", Pref: 10}, {Host: "z.example.test.", Pref: 30}},
			"null.example.test":          {{Host: ".", Pref: 0}},
			"noaddr.example.test":        {{Host: "ghost.example.test.", Pref: 10}},
			"partly.example.test":        {{Host: "ghost.example.test.", Pref: 5}, {Host: "mx10.example.test.", Pref: 10}},
			"tempmx.example.test":        {{Host: "broken.example.test.", Pref: 10}},
			"self.example.test":          {{Host: "relay.example.test.", Pref: 10}},
			"backup.example.test":        {{Host: "mx10.example.test.", Pref: 5}, {Host: "RELAY.example.test.", Pref: 10}, {Host: "mx20.example.test.", Pref: 20}},
			"xn--bcher-kva.example.test": {{Host: "mx10.example.test.", Pref: 10}},
		},
		IP: map[string][]netip.Addr{
			"mx10.example.test":  ips("192.0.2.10", "2001:db8::10"),
			"mx20.example.test":  ips("192.0.2.20"),
			"a.example.test":     ips("192.0.2.1"),
			"b.example.test":     ips("192.0.2.2"),
			"c.example.test":     ips("192.0.2.3"),
			"z.example.test":     ips("192.0.2.26"),
			"nomx.example.test":  ips("192.0.2.99"),
			"home.example.test":  ips("192.0.2.100"),
			"relay.example.test": ips("192.0.2.250"),
		},
		NXDomain: map[string]bool{"nowhere.example.test": true, "ghost.example.test": true},
		ServFail: map[string]bool{"servfail.example.test": true, "broken.example.test": true},
		Timeout:  map[string]bool{"slow.example.test": true},
	}
}

func fmtHosts(hs []Host) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%d %s%v:%d", h.Pref, h.Name, h.Addrs, h.Port))
	}
	return strings.Join(parts, ", ")
}

func TestHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hop  string
		want string
	}{
		{"MX sorted by preference", "smtp:example.test", "10 mx10.example.test[192.0.2.10 2001:db8::10]:25, 20 mx20.example.test[192.0.2.20]:25"},
		{"equal preferences shuffled, others kept", "smtp:equal.example.test", "10 c.example.test[192.0.2.3]:25, 10 b.example.test[192.0.2.2]:25, 10 a.example.test[192.0.2.1]:25, 30 z.example.test[192.0.2.26]:25"},
		{"MX next hop with a port", "smtp:example.test:2525", "10 mx10.example.test[192.0.2.10 2001:db8::10]:2525, 20 mx20.example.test[192.0.2.20]:2525"},
		{"no MX falls back to A/AAAA", "smtp:nomx.example.test", "0 nomx.example.test[192.0.2.99]:25"},
		{"bracketed host, no MX lookup", "smtp:[home.example.test]:10025", "0 home.example.test[192.0.2.100]:10025"},
		{"bracketed IP needs no lookup", "smtp:[192.0.2.5]", "0 192.0.2.5[192.0.2.5]:25"},
		{"smtps default port", "smtps:[home.example.test]", "0 home.example.test[192.0.2.100]:465"},
		{"unresolvable MX host skipped", "smtp:partly.example.test", "10 mx10.example.test[192.0.2.10 2001:db8::10]:25"},
		{"backup MX keeps only better hosts", "smtp:backup.example.test", "5 mx10.example.test[192.0.2.10 2001:db8::10]:25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(testConfig(t, nil, ""), fakeDNS())
			r.Shuffle = reverse
			hs, err := r.Hosts(context.Background(), mustHop(t, tt.hop))
			if err != nil {
				t.Fatalf("Hosts(%s) error = %v, want %s", tt.hop, err, tt.want)
			}
			if got := fmtHosts(hs); got != tt.want {
				t.Errorf("Hosts(%s) = %s, want %s", tt.hop, got, tt.want)
			}
		})
	}
}

func TestHosts_Failures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		hop           config.NextHop
		wantPermanent bool
		wantEnhanced  string
		wantErr       error
	}{
		{"null MX", mx("null.example.test"), true, "5.1.10", ErrNullMX},
		{"no such domain", mx("nowhere.example.test"), true, "5.1.2", ErrNoDomain},
		{"SERVFAIL is temporary", mx("servfail.example.test"), false, "4.4.3", ErrDNS},
		{"timeout is temporary", mx("slow.example.test"), false, "4.4.3", ErrDNS},
		{"no MX host has an address", mx("noaddr.example.test"), true, "5.4.4", ErrNoAddress},
		{"MX host lookup fails temporarily", mx("tempmx.example.test"), false, "4.4.3", ErrDNS},
		{"only MX is myself", mx("self.example.test"), true, "5.4.6", ErrLoop},
		{"domain without MX is myself", mx("relay.example.test"), true, "5.4.6", ErrLoop},
		{"bracketed host not found is temporary", bracketed("nowhere.example.test"), false, "4.4.4", ErrNoAddress},
		{"bracketed host DNS failure", bracketed("servfail.example.test"), false, "4.4.3", ErrDNS},
		{"no destination", config.NextHop{Transport: config.TransportSMTP, MX: true}, true, "5.1.3", ErrBadDestination},
		{"internationalized domain IDNA refuses", mx("ab\u00a0c.example.test"), true, "5.1.2", ErrIDNA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(testConfig(t, nil, ""), fakeDNS())
			hs, err := r.Hosts(context.Background(), tt.hop)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("Hosts(%s) = %s, %v; want a *route.Error", tt.hop, fmtHosts(hs), err)
			}
			if re.Permanent != tt.wantPermanent || re.Enhanced != tt.wantEnhanced {
				t.Errorf("Hosts(%s) error = permanent %v %s, want permanent %v %s (%v)", tt.hop, re.Permanent, re.Enhanced, tt.wantPermanent, tt.wantEnhanced, err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Hosts(%s) error = %v, want it to wrap %v", tt.hop, err, tt.wantErr)
			}
		})
	}
}

func mx(domain string) config.NextHop {
	return config.NextHop{Transport: config.TransportSMTP, Host: domain, MX: true}
}

func bracketed(host string) config.NextHop {
	return config.NextHop{Transport: config.TransportSMTP, Host: host}
}

func TestHosts_DefaultShuffleVariesOrder(t *testing.T) {
	t.Parallel()
	r := New(testConfig(t, nil, ""), fakeDNS())
	seen := map[string]bool{}
	// Three equal hosts have six orders; 200 draws all giving the same
	// first host has probability 3·(1/3)^200.
	for i := 0; i < 200 && len(seen) < 2; i++ {
		hs, err := r.Hosts(context.Background(), mx("equal.example.test"))
		if err != nil {
			t.Fatal(err)
		}
		seen[hs[0].Name] = true
		if last := hs[len(hs)-1].Name; last != "z.example.test" {
			t.Fatalf("Hosts(equal.example.test) last host = %s, want z.example.test (preference 30)", last)
		}
	}
	if len(seen) < 2 {
		t.Errorf("Hosts(equal.example.test) first hosts seen = %v, want the equal-preference hosts shuffled", seen)
	}
}

// TestHosts_InternationalizedDomainLooksUpItsALabel: DNS holds only
// A-labels, so bücher.example.test is looked up as xn--bcher-kva.
func TestHosts_InternationalizedDomainLooksUpItsALabel(t *testing.T) {
	t.Parallel()
	dns := fakeDNS()
	r := New(testConfig(t, nil, ""), dns)
	hs, err := r.Hosts(context.Background(), mx("bücher.example.test"))
	if err != nil || len(hs) != 1 || hs[0].Name != "mx10.example.test" {
		t.Fatalf("Hosts(bücher.example.test) = %s, %v; want mx10.example.test", fmtHosts(hs), err)
	}
	if q := dns.Queries(); len(q) == 0 || q[0] != "MX xn--bcher-kva.example.test" {
		t.Errorf("queries = %v, want the A-label first", q)
	}
}
