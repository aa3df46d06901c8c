package resolvetest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"smarthost/relay/resolve"
)

var _ resolve.Resolver = (*Resolver)(nil)

// Resolver answers from its maps. A name in NXDomain answers "no such
// host"; in ServFail, a temporary server failure; in Timeout, a timeout. A
// name in none of the maps and sets answers "no such host". Fill the maps
// before use; Resolver is then safe for concurrent use.
type Resolver struct {
	MX       map[string][]*net.MX
	IP       map[string][]netip.Addr // A and AAAA
	TXT      map[string][]string
	PTR      map[string][]string // keyed by address, e.g. "192.0.2.1"
	NXDomain map[string]bool
	ServFail map[string]bool
	Timeout  map[string]bool

	mu      sync.Mutex
	queries []string
}

// Queries returns the lookups made so far, as "TYPE name".
func (r *Resolver) Queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

func key(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// fail returns the configured failure for name, or nil.
func (r *Resolver) fail(typ, name string) error {
	k := key(name)
	r.mu.Lock()
	r.queries = append(r.queries, typ+" "+k)
	r.mu.Unlock()
	switch {
	case r.Timeout[k]:
		return &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
	case r.ServFail[k]:
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	case r.NXDomain[k]:
		return notFound(name)
	}
	return nil
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// LookupMX implements resolve.Resolver.
func (r *Resolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if err := r.fail("MX", name); err != nil {
		return nil, err
	}
	mx, ok := r.MX[key(name)]
	if !ok || len(mx) == 0 {
		return nil, notFound(name)
	}
	out := make([]*net.MX, len(mx))
	for i, m := range mx {
		c := *m
		out[i] = &c
	}
	return out, nil
}

// LookupNetIP implements resolve.Resolver; network is "ip", "ip4" or "ip6".
func (r *Resolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if err := r.fail("A", host); err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range r.IP[key(host)] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, notFound(host)
	}
	return out, nil
}

// LookupTXT implements resolve.Resolver.
func (r *Resolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if err := r.fail("TXT", name); err != nil {
		return nil, err
	}
	txt, ok := r.TXT[key(name)]
	if !ok {
		return nil, notFound(name)
	}
	return append([]string(nil), txt...), nil
}

// LookupAddr implements resolve.Resolver.
func (r *Resolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if err := r.fail("PTR", addr); err != nil {
		return nil, err
	}
	names, ok := r.PTR[addr]
	if !ok {
		return nil, notFound(addr)
	}
	return append([]string(nil), names...), nil
}
