package dnsbl

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"smarthost/relay/interop"
	"smarthost/relay/resolve"
)

// TestCheck_AgainstDnsmasq asks a real DNS server, so that what
// *net.Resolver returns for a listed address, an unlisted one (NXDOMAIN)
// and a refusal code is what Check expects, and the query names really
// are the ones lists publish.
func TestCheck_AgainstDnsmasq(t *testing.T) {
	t.Parallel()
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{"bl.test"},
		Hosts: map[string][]string{
			"2.0.0.127.bl.test": {"127.0.0.2"},
			"1.2.0.192.bl.test": {"127.255.255.254"},
			"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test": {"127.0.0.4"},
		},
	})
	c := New([]string{"bl.test"}, resolve.New(dns.Addr, 5*time.Second))

	tests := []struct {
		ip          string
		wantListed  bool
		wantAnswer  string
		wantRefused bool
	}{
		{"127.0.0.2", true, "127.0.0.2", false},
		{"127.0.0.1", false, "", false}, // RFC 5782 §5: never listed
		{"192.0.2.1", false, "", true},
		{"2001:db8:1:2:3:4:567:89ab", true, "127.0.0.4", false},
		{"2001:db8::1", false, "", false},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got := c.Check(ctx, netip.MustParseAddr(tt.ip))
		cancel()
		var want netip.Addr
		if tt.wantAnswer != "" {
			want = netip.MustParseAddr(tt.wantAnswer)
		}
		if got.Listed != tt.wantListed || got.Answer != want || (got.Listed && got.Zone != "bl.test") {
			t.Errorf("Check(%s) = listed %v zone %q answer %v, want %v bl.test %v", tt.ip, got.Listed, got.Zone, got.Answer, tt.wantListed, want)
		}
		if tt.wantRefused != errors.Is(got.Err, ErrRefused) || (!tt.wantRefused && got.Err != nil) {
			t.Errorf("Check(%s).Err = %v, want refused %v and no other error", tt.ip, got.Err, tt.wantRefused)
		}
	}
}
