package dnsbl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"smarthost/relay/resolve"
	"smarthost/relay/resolve/resolvetest"
)

var _ resolve.Resolver = (*resolvetest.Resolver)(nil)

func ips(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestReverse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want string
	}{
		{"192.0.2.1", "1.2.0.192"},
		{"127.0.0.2", "2.0.0.127"},
		// RFC 5782 §2.4's example.
		{"2001:db8:1:2:3:4:567:89ab", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"},
		{"::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"},
	}
	for _, tt := range tests {
		if got := reverse(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("reverse(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestNew_NormalisesZones(t *testing.T) {
	t.Parallel()
	got := New([]string{"ZEN.Spamhaus.org.", "", " bl.test "}, &resolvetest.Resolver{}).Zones()
	if want := []string{"zen.spamhaus.org", "bl.test"}; !slices.Equal(got, want) {
		t.Errorf("Zones() = %q, want %q", got, want)
	}
}

// lists is the fake DNS of two blocklists, a.test and b.test.
func lists() *resolvetest.Resolver {
	return &resolvetest.Resolver{
		IP: map[string][]netip.Addr{
			"2.0.0.127.a.test":  ips("127.0.0.2"),
			"2.0.0.127.b.test":  ips("127.0.0.4"),
			"1.2.0.192.b.test":  ips("127.0.0.10", "127.0.0.4"),
			"6.2.0.192.b.test":  ips("127.0.0.4"),
			"9.2.0.192.a.test":  ips("127.255.255.254"),
			"10.2.0.192.a.test": ips("127.0.0.2", "127.255.255.255"),
			"11.2.0.192.a.test": ips("203.0.113.7"),
			"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.a.test": ips("127.0.0.3"),
		},
		Timeout:  map[string]bool{"3.2.0.192.a.test": true},
		ServFail: map[string]bool{"4.2.0.192.a.test": true, "6.2.0.192.a.test": true},
		NXDomain: map[string]bool{"5.2.0.192.a.test": true, "5.2.0.192.b.test": true},
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		zones      []string
		ip         string
		wantListed bool
		wantZone   string
		wantAnswer string // "" for the zero Addr
		wantErr    errKind
	}{
		{"listed by one zone", []string{"a.test"}, "127.0.0.2", true, "a.test", "127.0.0.2", noErr},
		{"first zone in configured order wins", []string{"b.test", "a.test"}, "127.0.0.2", true, "b.test", "127.0.0.4", noErr},
		{"lowest of several answers", []string{"a.test", "b.test"}, "192.0.2.1", true, "b.test", "127.0.0.4", noErr},
		{"not listed: name absent", []string{"a.test", "b.test"}, "192.0.2.200", false, "", "", noErr},
		{"not listed: NXDOMAIN", []string{"a.test", "b.test"}, "192.0.2.5", false, "", "", noErr},
		{"127.255.255.254 is a refusal, not a listing", []string{"a.test"}, "192.0.2.9", false, "", "", refusedErr},
		{"refusal wins over a listing in the same answer", []string{"a.test"}, "192.0.2.10", false, "", "", refusedErr},
		{"answer outside 127/8 is an error", []string{"a.test"}, "192.0.2.11", false, "", "", badAnswer},
		{"timeout fails open", []string{"a.test"}, "192.0.2.3", false, "", "", dnsTimeout},
		{"SERVFAIL fails open", []string{"a.test"}, "192.0.2.4", false, "", "", dnsServFail},
		{"listed by one, the other failed", []string{"a.test", "b.test"}, "192.0.2.6", true, "b.test", "127.0.0.4", dnsServFail},
		{"IPv6 by nibbles", []string{"a.test"}, "2001:db8:1:2:3:4:567:89ab", true, "a.test", "127.0.0.3", noErr},
		{"IPv4-mapped IPv6 is looked up as IPv4", []string{"a.test"}, "::ffff:127.0.0.2", true, "a.test", "127.0.0.2", noErr},
		{"no zones", nil, "127.0.0.2", false, "", "", noErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := New(tt.zones, lists()).Check(context.Background(), netip.MustParseAddr(tt.ip))
			var wantAnswer netip.Addr
			if tt.wantAnswer != "" {
				wantAnswer = netip.MustParseAddr(tt.wantAnswer)
			}
			if got.Listed != tt.wantListed || got.Zone != tt.wantZone || got.Answer != wantAnswer {
				t.Errorf("Check(%s) = listed %v zone %q answer %v, want %v %q %v", tt.ip, got.Listed, got.Zone, got.Answer, tt.wantListed, tt.wantZone, wantAnswer)
			}
			if !tt.wantErr.ok(got.Err) {
				t.Errorf("Check(%s).Err = %v, want %s", tt.ip, got.Err, tt.wantErr.desc)
			}
		})
	}
}

// errKind says what Result.Err must be.
type errKind struct {
	desc string
	ok   func(error) bool
}

var (
	noErr       = errKind{"nil", func(err error) bool { return err == nil }}
	refusedErr  = errKind{"ErrRefused", func(err error) bool { return errors.Is(err, ErrRefused) }}
	badAnswer   = errKind{"ErrBadAnswer", func(err error) bool { return errors.Is(err, ErrBadAnswer) }}
	dnsTimeout  = errKind{"a DNS timeout", func(err error) bool { var de *net.DNSError; return errors.As(err, &de) && de.IsTimeout }}
	dnsServFail = errKind{"a DNS server failure", func(err error) bool {
		var de *net.DNSError
		return errors.As(err, &de) && de.IsTemporary && !de.IsTimeout
	}}
)

func TestCheck_DNSErrorsNameTheZone(t *testing.T) {
	t.Parallel()
	got := New([]string{"a.test"}, lists()).Check(context.Background(), netip.MustParseAddr("192.0.2.3"))
	var de *net.DNSError
	if !errors.As(got.Err, &de) || !de.IsTimeout {
		t.Fatalf("Check on a timing-out list: Err = %v, want a *net.DNSError timeout", got.Err)
	}
	if want := "dnsbl: a.test for 192.0.2.3: lookup 3.2.0.192.a.test.: i/o timeout"; got.Err.Error() != want {
		t.Errorf("Err = %q, want %q", got.Err, want)
	}
}

func TestCheck_AsksEachZoneOnceByFullyQualifiedName(t *testing.T) {
	t.Parallel()
	r := lists()
	New([]string{"a.test", "b.test"}, r).Check(context.Background(), netip.MustParseAddr("192.0.2.1"))
	got := r.Queries()
	slices.Sort(got)
	if want := []string{"A 1.2.0.192.a.test", "A 1.2.0.192.b.test"}; !slices.Equal(got, want) {
		t.Errorf("queries = %q, want %q", got, want)
	}
}

func TestCheck_NoZonesNoQueries(t *testing.T) {
	t.Parallel()
	r := lists()
	if got := New(nil, r).Check(context.Background(), netip.MustParseAddr("127.0.0.2")); got.Listed || got.Err != nil {
		t.Errorf("Check without zones = %+v, want not listed, no error", got)
	}
	if q := r.Queries(); len(q) != 0 {
		t.Errorf("queries = %q, want none", q)
	}
}

func TestCheck_InvalidAddress(t *testing.T) {
	t.Parallel()
	if got := New([]string{"a.test"}, lists()).Check(context.Background(), netip.Addr{}); got.Listed || !errors.Is(got.Err, ErrBadAddress) {
		t.Errorf("Check(invalid) = %+v, want not listed, ErrBadAddress", got)
	}
}

// stuck is a resolver whose lookups never return until the test ends,
// whatever their context says: Check must still return when its own
// context ends.
type stuck struct {
	resolvetest.Resolver
	done chan struct{}
}

func (s *stuck) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	<-s.done
	return nil, errors.New("stuck: released")
}

func TestCheck_ContextBoundsSlowLists(t *testing.T) {
	t.Parallel()
	r := &stuck{done: make(chan struct{})}
	t.Cleanup(func() { close(r.done) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := New([]string{"a.test", "b.test"}, r).Check(ctx, netip.MustParseAddr("127.0.0.2"))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Check returned after %v, want soon after its context ended", el)
	}
	if got.Listed || !errors.Is(got.Err, context.DeadlineExceeded) {
		t.Errorf("Check = %+v, want not listed, context.DeadlineExceeded", got)
	}
}
