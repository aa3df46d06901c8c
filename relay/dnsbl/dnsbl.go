package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"smarthost/relay/resolve"
)

// Errors a zone's answer can carry in [Result.Err], besides DNS errors.
var (
	// ErrRefused: the list answered with an address in 127.255.255.0/24,
	// its way of refusing the query (Spamhaus: public resolver, excessive
	// queries, zone typo). Check the [dns] server setting.
	ErrRefused = errors.New("dnsbl: query refused by the list")
	// ErrBadAnswer: the answer lies outside 127.0.0.0/8, which no list
	// uses (RFC 5782 §2.1); usually a resolver that rewrites NXDOMAIN.
	ErrBadAnswer = errors.New("dnsbl: answer outside 127.0.0.0/8")
	// ErrBadAddress: the client address is not a valid IP address.
	ErrBadAddress = errors.New("dnsbl: invalid client address")
)

// refused is the range of Spamhaus's error return codes.
var refused = netip.MustParsePrefix("127.255.255.0/24")

// loopback is where every listing's answer lies (RFC 5782 §2.1).
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// Checker asks a fixed set of zones about client addresses. Build it with
// [New]; it is immutable and safe for concurrent use. A configuration
// reload builds a new one.
type Checker struct {
	resolver resolve.Resolver
	zones    []string
}

// New returns a Checker for zones (inbound.dnsbl, e.g.
// ["zen.spamhaus.org"]), in the order given, which is the order of
// preference when several list a client. Zone names are lower-cased and
// a trailing dot dropped; empty names are ignored. Every lookup goes
// through r.
func New(zones []string, r resolve.Resolver) *Checker {
	c := &Checker{resolver: r}
	for _, z := range zones {
		z = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(z), "."))
		if z != "" {
			c.zones = append(c.zones, z)
		}
	}
	return c
}

// Zones returns the zones checked, normalised, in order.
func (c *Checker) Zones() []string { return append([]string(nil), c.zones...) }

// Result is the outcome of [Checker.Check].
type Result struct {
	// Listed is true when at least one zone lists the client.
	Listed bool
	// Zone is the first zone, in configured order, that lists the
	// client; "" when none does. The reply names it.
	Zone string
	// Answer is that zone's A record, e.g. 127.0.0.2, which says why the
	// client is listed; the zero Addr when not listed.
	Answer netip.Addr
	// Err joins the failures of zones that could not be asked or gave an
	// answer that is not a listing ([ErrRefused], [ErrBadAnswer], DNS
	// errors), each naming its zone; nil when every zone answered. Such
	// zones count as not listing the client (fail open): log Err, and
	// go on.
	Err error
}

// Check asks every zone about ip, in parallel, and returns when all have
// answered or ctx is done (a zone not answered by then counts as a
// failure). An IPv4-mapped IPv6 address is looked up as IPv4. With no
// zones it returns the zero Result at once.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) Result {
	if len(c.zones) == 0 {
		return Result{}
	}
	if !ip.IsValid() {
		return Result{Err: ErrBadAddress}
	}
	ip = ip.Unmap()
	rev := reverse(ip)
	type answer struct {
		zone int
		addr netip.Addr // a listing, or the zero Addr
		err  error
	}
	// Buffered, so that lookups still running when ctx ends do not
	// block: they finish on their own, bounded by the resolver.
	ch := make(chan answer, len(c.zones))
	for i, zone := range c.zones {
		go func() {
			a, err := c.lookup(ctx, rev+"."+zone+".")
			ch <- answer{i, a, err}
		}()
	}
	answers := make([]*answer, len(c.zones))
collect:
	for range c.zones {
		select {
		case a := <-ch:
			answers[a.zone] = &a
		case <-ctx.Done():
			break collect
		}
	}
	// Answers that came in with the end of ctx still count.
	for drained := false; !drained; {
		select {
		case a := <-ch:
			answers[a.zone] = &a
		default:
			drained = true
		}
	}

	var res Result
	var errs []error
	for i, a := range answers {
		switch {
		case a == nil:
			errs = append(errs, fmt.Errorf("dnsbl: %s for %s: %w", c.zones[i], ip, ctx.Err()))
		case a.err != nil:
			errs = append(errs, fmt.Errorf("dnsbl: %s for %s: %w", c.zones[i], ip, a.err))
		case a.addr.IsValid() && !res.Listed:
			res.Listed, res.Zone, res.Answer = true, c.zones[i], a.addr
		}
	}
	res.Err = errors.Join(errs...)
	return res
}

// lookup asks for the A records of name. It returns the listing answer,
// the zero Addr when the name does not exist, or an error.
func (c *Checker) lookup(ctx context.Context, name string) (netip.Addr, error) {
	addrs, err := c.resolver.LookupNetIP(ctx, "ip4", name)
	switch {
	case resolve.IsNotFound(err):
		return netip.Addr{}, nil
	case err != nil:
		return netip.Addr{}, err
	case ctx.Err() != nil:
		// A resolver that ignores ctx must not make a late answer count.
		return netip.Addr{}, ctx.Err()
	}
	var listed netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case refused.Contains(a):
			// An error code wins over any listing in the same answer:
			// the list did not really answer the question.
			return netip.Addr{}, fmt.Errorf("%w: %s", ErrRefused, a)
		case !loopback.Contains(a):
			return netip.Addr{}, fmt.Errorf("%w: %s", ErrBadAnswer, a)
		case !listed.IsValid() || a.Less(listed):
			listed = a
		}
	}
	return listed, nil
}

// reverse writes ip the way DNS lists are keyed (RFC 5782 §2.1, §2.4):
// IPv4 octets in reverse order, "2.0.0.127"; IPv6 as 32 nibbles in
// reverse order, "1.0.0.0…8.b.d.0.1.0.0.2".
func reverse(ip netip.Addr) string {
	var b strings.Builder
	if ip.Is4() {
		o := ip.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d", o[3], o[2], o[1], o[0])
		return b.String()
	}
	const hex = "0123456789abcdef"
	o := ip.As16()
	b.Grow(63)
	for i := len(o) - 1; i >= 0; i-- {
		if i != len(o)-1 {
			b.WriteByte('.')
		}
		b.WriteByte(hex[o[i]&0x0f])
		b.WriteByte('.')
		b.WriteByte(hex[o[i]>>4])
	}
	return b.String()
}
