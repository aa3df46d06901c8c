package route

import (
	"math/rand/v2"
	"net/netip"
	"strings"

	"smarthost/config"
	"smarthost/relay/resolve"
)

// Router picks next hops and the hosts behind them. Build one with [New];
// after that it is read-only and safe for concurrent use. A configuration
// reload builds a new Router.
type Router struct {
	// Shuffle reorders MX hosts of equal preference, as RFC 5321 §5.1
	// asks so that load spreads over them. It has the signature of
	// math/rand/v2.Shuffle, which is the default. Tests set a
	// deterministic one. Set it before the first call to [Router.Hosts].
	Shuffle func(n int, swap func(i, j int))

	resolver     resolve.Resolver
	transport    map[string]config.NextHop
	relayhost    config.NextHop
	relayDomains []string
	hostname     string
}

// New returns a Router for the transport map, relayhost, relay domains and
// host name of cfg, which must have been validated by config.Load (keys
// lower-cased, next hops parsed). It copies what it needs, so later changes
// to cfg do not affect it. All DNS lookups go through r.
func New(cfg *config.Config, r resolve.Resolver) *Router {
	transport := make(map[string]config.NextHop, len(cfg.Transport))
	for k, v := range cfg.Transport {
		transport[strings.ToLower(strings.TrimSuffix(k, "."))] = v
	}
	domains := make([]string, 0, len(cfg.RelayDomains))
	for _, d := range cfg.RelayDomains {
		domains = append(domains, strings.ToLower(strings.TrimSuffix(d, ".")))
	}
	return &Router{
		Shuffle:      rand.Shuffle,
		resolver:     r,
		transport:    transport,
		relayhost:    cfg.Delivery.Relayhost,
		relayDomains: domains,
		hostname:     normalizeName(cfg.Hostname),
	}
}

// Route returns the next hop for a recipient (a forward-path in wire form,
// local@domain). The order is Postfix's: the transport map by full address,
// then by domain, then by parent domain (".example.com" keys match every
// subdomain, never example.com itself), then its "*" entry; then the
// relayhost; else "smtp:<domain>", which means an MX lookup. A recipient
// at an address literal (user@[192.0.2.1]) without a transport entry goes
// straight to that address.
//
// Route never fails: a recipient without a domain yields a next hop with
// an empty Host, which [Router.Hosts] reports as a permanent failure.
func (r *Router) Route(rcpt string) config.NextHop {
	addr := strings.ToLower(rcpt)
	domain := domainOf(addr)
	if h, ok := r.transport[addr]; ok {
		return h
	}
	if h, ok := r.lookupDomain(domain); ok {
		return h
	}
	if h, ok := r.transport["*"]; ok {
		return h
	}
	if !r.relayhost.IsZero() {
		return r.relayhost
	}
	return defaultHop(domain)
}

// IsRelayDestination reports whether an mx listener may accept mail for
// addr from anyone: its domain is a relay domain (an entry "example.com"
// matches only example.com, ".example.com" matches its subdomains), or the
// transport map routes the address, its domain or a parent domain
// explicitly. The transport map's "*" entry never makes a destination
// ours: it only says where our outbound mail goes, and counting it would
// make an open relay.
//
// It judges the domain only; rejecting sender-specified routing in the
// local part (user%host@domain) is the session's job.
func (r *Router) IsRelayDestination(addr string) bool {
	a := strings.ToLower(addr)
	domain := domainOf(a)
	if domain == "" || strings.HasPrefix(domain, "[") {
		return false
	}
	for _, d := range r.relayDomains {
		if strings.HasPrefix(d, ".") {
			if strings.HasSuffix(domain, d) {
				return true
			}
		} else if domain == d {
			return true
		}
	}
	if _, ok := r.transport[a]; ok {
		return true
	}
	_, ok := r.lookupDomain(domain)
	return ok
}

// lookupDomain looks up domain and then its parents as ".parent" keys, as
// Postfix's transport(5) does when parent_domain_matches_subdomains does
// not list transport_maps (the default).
func (r *Router) lookupDomain(domain string) (config.NextHop, bool) {
	if domain == "" || strings.HasPrefix(domain, "[") {
		return config.NextHop{}, false
	}
	if h, ok := r.transport[domain]; ok {
		return h, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return config.NextHop{}, false
		}
		d = d[i+1:]
		if h, ok := r.transport["."+d]; ok {
			return h, true
		}
	}
}

// defaultHop is "smtp:<domain>", or for an address literal the bracketed
// address itself (RFC 5321 §4.1.3: the literal is the host).
func defaultHop(domain string) config.NextHop {
	if lit, ok := strings.CutPrefix(domain, "["); ok {
		lit = strings.TrimSuffix(lit, "]")
		lit = strings.TrimPrefix(lit, "ipv6:")
		if a, err := netip.ParseAddr(lit); err == nil {
			return config.NextHop{Transport: config.TransportSMTP, Host: a.String()}
		}
		return config.NextHop{Transport: config.TransportSMTP, MX: true}
	}
	return config.NextHop{Transport: config.TransportSMTP, Host: domain, MX: true}
}

// domainOf returns the part after the last '@' without a trailing dot, or
// "" when there is none.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.TrimSuffix(addr[at+1:], ".")
}

func normalizeName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }
