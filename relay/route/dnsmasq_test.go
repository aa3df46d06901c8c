package route

import (
	"context"
	"errors"
	"testing"

	"smarthost/relay/interop"
	"smarthost/relay/resolve"
)

// TestHosts_AgainstDnsmasq runs the MX rules against a real DNS server, so
// that what *net.Resolver really returns for a null MX, a domain without
// MX records (NOERROR, no data) and NXDOMAIN is what Hosts expects.
func TestHosts_AgainstDnsmasq(t *testing.T) {
	t.Parallel()
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{"example.test"},
		MX: map[string][]string{
			"example.test":      {"20 mx2.example.test", "10 mx1.example.test", "10 mx1b.example.test"},
			"null.example.test": {"0 ."},
			"dead.example.test": {"10 ghost.example.test"},
		},
		Hosts: map[string][]string{
			"mx1.example.test":  {"127.0.0.11"},
			"mx1b.example.test": {"127.0.0.12"},
			"mx2.example.test":  {"127.0.0.2"},
			"nomx.example.test": {"127.0.0.9"},
		},
	})
	r := New(testConfig(t, nil, ""), resolve.New(dns.Addr, 0))
	r.Shuffle = reverse
	ctx := context.Background()

	// The order dnsmasq gives equal preferences is its own, and the
	// shuffle is checked against the fake resolver; here the two
	// preference-10 hosts may come in either order, before mx2.
	hs, err := r.Hosts(ctx, mx("example.test"))
	want := "10 mx1.example.test[127.0.0.11]:25, 10 mx1b.example.test[127.0.0.12]:25, 20 mx2.example.test[127.0.0.2]:25"
	if err != nil || (fmtHosts(hs) != want && !(len(hs) == 3 && fmtHosts([]Host{hs[1], hs[0], hs[2]}) == want)) {
		t.Errorf("Hosts(smtp:example.test) = %s, %v; want %s (equal preferences in either order)", fmtHosts(hs), err, want)
	}

	hs, err = r.Hosts(ctx, mx("nomx.example.test"))
	if want := "0 nomx.example.test[127.0.0.9]:25"; err != nil || fmtHosts(hs) != want {
		t.Errorf("Hosts(smtp:nomx.example.test) = %s, %v; want %s (A fallback)", fmtHosts(hs), err, want)
	}

	for _, tt := range []struct {
		domain        string
		wantErr       error
		wantEnhanced  string
		wantPermanent bool
	}{
		{"null.example.test", ErrNullMX, "5.1.10", true},
		{"nowhere.example.test", ErrNoDomain, "5.1.2", true},
		{"dead.example.test", ErrNoAddress, "5.4.4", true},
	} {
		_, err := r.Hosts(ctx, mx(tt.domain))
		var re *Error
		if !errors.As(err, &re) || !errors.Is(err, tt.wantErr) || re.Enhanced != tt.wantEnhanced || re.Permanent != tt.wantPermanent {
			t.Errorf("Hosts(smtp:%s) error = %v, want %v (%s, permanent %v)", tt.domain, err, tt.wantErr, tt.wantEnhanced, tt.wantPermanent)
		}
	}
}
