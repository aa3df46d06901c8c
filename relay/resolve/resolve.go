package resolve

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Resolver is the subset of *net.Resolver smarthost uses. Implementations
// must be safe for concurrent use. Errors should be *net.DNSError so that
// [IsNotFound] and [IsTemporary] can classify them.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// New returns the system resolver when server is "", or one that sends
// every query to server (host:port) instead. Each lookup is bounded by
// timeout.
func New(server string, timeout time.Duration) Resolver {
	r := net.DefaultResolver
	if server != "" {
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, server)
			},
		}
	}
	return &bounded{r: r, timeout: timeout}
}

// bounded applies a per-lookup timeout.
type bounded struct {
	r       *net.Resolver
	timeout time.Duration
}

func (b *bounded) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.timeout)
}

func (b *bounded) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.r.LookupMX(ctx, name)
}

func (b *bounded) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.r.LookupNetIP(ctx, network, host)
}

func (b *bounded) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.r.LookupTXT(ctx, name)
}

func (b *bounded) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.r.LookupAddr(ctx, addr)
}

// IsNotFound reports whether err says the name or record does not exist
// (NXDOMAIN or no records of the type): an answer, not a failure.
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// IsTemporary reports whether err is a failure that may go away: SERVFAIL,
// a timeout, an unreachable server. Anything that is not a definite
// "not found" counts as temporary, so a DNS outage defers mail rather than
// bouncing it.
func IsTemporary(err error) bool {
	return err != nil && !IsNotFound(err)
}
