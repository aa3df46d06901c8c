package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"golang.org/x/net/idna"

	"smarthost/config"
	"smarthost/relay/resolve"
)

// Host is one server to try for a next hop.
type Host struct {
	// Name is the MX host name (lower case, no trailing dot), the
	// bracketed host of a next hop, or the domain itself when it has no MX
	// records. Under the verify TLS policy the server's certificate must
	// be valid for Name; a DSN names it as Remote-MTA.
	Name string
	// Addrs are Name's addresses in the resolver's order; never empty.
	Addrs []netip.Addr
	// Port is the TCP port: the next hop's, or its transport's default.
	Port int
	// Pref is the MX preference; 0 for a bracketed next hop or a domain
	// without MX records (RFC 5321 §5.1 treats it as an implicit MX of
	// preference 0).
	Pref uint16
}

// Error is a routing failure. Permanent failures are final for the
// recipients of the next hop (the queue bounces them); temporary ones are
// retried. Enhanced is the RFC 3463 status code for the DSN. Err wraps one
// of the sentinels below or the resolver's error.
type Error struct {
	// Permanent is true when retrying cannot help.
	Permanent bool
	// Enhanced is the RFC 3463 status, e.g. "5.1.10"; its class agrees
	// with Permanent.
	Enhanced string
	// Err says what failed.
	Err error
}

// Error returns the wrapped error's text.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error, so errors.Is finds the sentinels.
func (e *Error) Unwrap() error { return e.Err }

// Reasons a next hop has no host to try; [Router.Hosts] wraps them in an
// [*Error].
var (
	ErrBadDestination = errors.New("route: no destination domain")
	ErrNullMX         = errors.New("route: domain accepts no mail (null MX)")
	ErrNoDomain       = errors.New("route: domain not found")
	ErrNoAddress      = errors.New("route: no address for host")
	ErrLoop           = errors.New("route: mail loops back to myself")
	ErrIDNA           = errors.New("route: invalid internationalized domain name")
	ErrDNS            = errors.New("route: DNS lookup failed")
)

// Hosts returns the servers to try for hop, best first.
//
// A bracketed next hop (MX false) is that host, resolved to its addresses
// unless it is an IP address. An MX next hop is its domain's MX hosts
// sorted by preference, equal preferences shuffled with [Router.Shuffle];
// MX hosts without an address are left out. The outcomes:
//
//   - no MX records: the domain's own A/AAAA records (RFC 5321 §5.1);
//   - a null MX "0 ." (RFC 7505): permanent, 5.1.10;
//   - no such domain, neither MX nor address: permanent, 5.1.2;
//   - no MX host has an address: permanent, 5.4.4 (as Postfix);
//   - our own host name among the MX hosts: the hosts of equal or worse
//     preference are dropped (RFC 5321 §5.1); if none is left, permanent
//     5.4.6 (Postfix: "mail for ... loops back to myself");
//   - a DNS failure (SERVFAIL, timeout): temporary, 4.4.3;
//   - an MX next hop whose domain is not ASCII: permanent, 5.4.4, because
//     IDNA (U-label to A-label conversion) is not implemented yet;
//   - a bracketed host that does not resolve: temporary, 4.4.4, because
//     the host comes from our own configuration and bouncing mail for an
//     administrator's DNS mistake would lose it.
//
// Every error is an [*Error].
func (r *Router) Hosts(ctx context.Context, hop config.NextHop) ([]Host, error) {
	port := hop.Port
	if port == 0 {
		port = hop.Transport.DefaultPort()
	}
	if hop.Host == "" {
		return nil, &Error{Permanent: true, Enhanced: "5.1.3", Err: ErrBadDestination}
	}
	if !hop.MX {
		return r.bracketed(ctx, normalizeName(hop.Host), port)
	}
	return r.mx(ctx, normalizeName(hop.Host), port)
}

func (r *Router) bracketed(ctx context.Context, name string, port int) ([]Host, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return []Host{{Name: a.String(), Addrs: []netip.Addr{a.Unmap()}, Port: port}}, nil
	}
	addrs, err := r.addrs(ctx, name)
	switch {
	case err == nil:
		return []Host{{Name: name, Addrs: addrs, Port: port}}, nil
	case resolve.IsNotFound(err):
		return nil, &Error{Enhanced: "4.4.4", Err: fmt.Errorf("%w: %s", ErrNoAddress, name)}
	default:
		return nil, dnsError(name, err)
	}
}

func (r *Router) mx(ctx context.Context, domain string, port int) ([]Host, error) {
	if !isASCII(domain) {
		// DNS knows only A-labels: convert the U-labels of an
		// internationalized domain (RFC 5891 §5) before the lookup, as
		// Postfix does with smtputf8_enable. A name that IDNA refuses
		// can never be found.
		a, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			return nil, &Error{Permanent: true, Enhanced: "5.1.2", Err: fmt.Errorf("%w: %s: %v", ErrIDNA, domain, err)}
		}
		domain = a
	}
	mxs, err := r.resolver.LookupMX(ctx, domain)
	// *net.Resolver may return the well-formed records together with an
	// error about malformed ones; use what is usable.
	if len(mxs) == 0 {
		if err != nil && !resolve.IsNotFound(err) {
			return nil, dnsError(domain, err)
		}
		return r.implicitMX(ctx, domain, port)
	}
	for _, m := range mxs {
		// RFC 7505 §3: a domain with a null MX must publish no other MX
		// record, so one is enough to say the domain takes no mail.
		if m.Host == "." || m.Host == "" {
			return nil, &Error{Permanent: true, Enhanced: "5.1.10", Err: fmt.Errorf("%w: %s", ErrNullMX, domain)}
		}
	}
	mxs = r.sortMX(mxs)
	mxs, err = r.dropSelf(domain, mxs)
	if err != nil {
		return nil, err
	}
	return r.resolveMX(ctx, domain, mxs, port)
}

// implicitMX handles a domain without MX records: RFC 5321 §5.1 says the
// domain itself is the host, as an implicit MX of preference 0.
func (r *Router) implicitMX(ctx context.Context, domain string, port int) ([]Host, error) {
	if domain == r.hostname {
		return nil, &Error{Permanent: true, Enhanced: "5.4.6", Err: fmt.Errorf("%w: %s", ErrLoop, domain)}
	}
	addrs, err := r.addrs(ctx, domain)
	switch {
	case err == nil:
		return []Host{{Name: domain, Addrs: addrs, Port: port}}, nil
	case resolve.IsNotFound(err):
		return nil, &Error{Permanent: true, Enhanced: "5.1.2", Err: fmt.Errorf("%w: %s", ErrNoDomain, domain)}
	default:
		return nil, dnsError(domain, err)
	}
}

// sortMX orders by preference and shuffles each run of equal preference
// (RFC 5321 §5.1: "the SMTP client SHOULD randomize them to spread the
// load").
func (r *Router) sortMX(mxs []*net.MX) []*net.MX {
	out := slices.Clone(mxs)
	slices.SortStableFunc(out, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].Pref == out[i].Pref {
			j++
		}
		if j-i > 1 {
			run := out[i:j]
			r.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
		}
		i = j
	}
	return out
}

// dropSelf applies RFC 5321 §5.1: when this host is one of the MX hosts,
// "it MUST discard all MX records with preference equal or higher than its
// own", so that a backup MX hands mail only to better ones.
func (r *Router) dropSelf(domain string, mxs []*net.MX) ([]*net.MX, error) {
	if r.hostname == "" {
		return mxs, nil
	}
	for i, m := range mxs {
		if normalizeName(m.Host) != r.hostname {
			continue
		}
		cut := i
		for cut > 0 && mxs[cut-1].Pref == m.Pref {
			cut--
		}
		if cut == 0 {
			return nil, &Error{Permanent: true, Enhanced: "5.4.6", Err: fmt.Errorf("%w: %s", ErrLoop, domain)}
		}
		return mxs[:cut], nil
	}
	return mxs, nil
}

// resolveMX looks up every MX host's addresses. Hosts that do not resolve
// are skipped; the next hop fails only when none is left.
func (r *Router) resolveMX(ctx context.Context, domain string, mxs []*net.MX, port int) ([]Host, error) {
	hosts := make([]Host, 0, len(mxs))
	var tempErr error
	for _, m := range mxs {
		name := normalizeName(m.Host)
		addrs, err := r.addrs(ctx, name)
		if err != nil {
			if !resolve.IsNotFound(err) && tempErr == nil {
				tempErr = err
			}
			continue
		}
		hosts = append(hosts, Host{Name: name, Addrs: addrs, Port: port, Pref: m.Pref})
	}
	switch {
	case len(hosts) > 0:
		return hosts, nil
	case tempErr != nil:
		return nil, dnsError(domain, tempErr)
	default:
		return nil, &Error{Permanent: true, Enhanced: "5.4.4", Err: fmt.Errorf("%w: no MX host of %s has an address", ErrNoAddress, domain)}
	}
}

// addrs returns name's IPv4 and IPv6 addresses, without duplicates.
func (r *Router) addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	ips, err := r.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.IsValid() && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return out, nil
}

// dnsError is a temporary failure: RFC 3463 X.4.3, directory server
// failure. resolve.IsTemporary counts anything but "not found" as
// temporary, so a DNS outage defers mail instead of bouncing it.
func dnsError(name string, err error) error {
	return &Error{Enhanced: "4.4.3", Err: fmt.Errorf("%w: %s: %w", ErrDNS, name, err)}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
