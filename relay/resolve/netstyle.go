package resolve

import (
	"context"
	"errors"
	"net"
)

// NetStyle adapts a Resolver to the method set of *net.Resolver that DNS
// libraries expect (blitiri.com.ar/go/spf's DNSResolver: LookupIPAddr
// rather than LookupNetIP) and normalizes its errors with [DNSError], so
// that a library which tells answers from failures by *net.DNSError sees
// every failure but a definite "not found" as temporary: a DNS outage then
// gives SPF temperror, never permerror. Inbound checks and `dns check`
// both use it.
type NetStyle struct{ Resolver Resolver }

func (s NetStyle) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, err := s.Resolver.LookupTXT(ctx, name)
	return txt, DNSError(err, name)
}

func (s NetStyle) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := s.Resolver.LookupMX(ctx, name)
	return mx, DNSError(err, name)
}

func (s NetStyle) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := s.Resolver.LookupAddr(ctx, addr)
	return names, DNSError(err, addr)
}

func (s NetStyle) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := s.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, DNSError(err, host)
	}
	out := make([]net.IPAddr, len(addrs))
	for i, a := range addrs {
		out[i] = net.IPAddr{IP: net.IP(a.Unmap().AsSlice()), Zone: a.Zone()}
	}
	return out, nil
}

// DNSError returns err as a *net.DNSError about name that is either
// not-found or temporary, or nil. Go reports a refused query or a
// malformed answer ("server misbehaving") as not temporary; by
// [IsTemporary]'s rule everything but a definite "not found" may go away,
// so it is handed on as temporary. The text keeps only the reason of a
// wrapped *net.DNSError, so it does not read "lookup x: lookup x: …".
func DNSError(err error, name string) error {
	if err == nil {
		return nil
	}
	if IsNotFound(err) {
		return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	reason, timeout := err.Error(), false
	var de *net.DNSError
	if errors.As(err, &de) {
		reason, timeout = de.Err, de.IsTimeout
	}
	return &net.DNSError{Err: reason, Name: name, IsTemporary: true, IsTimeout: timeout}
}
