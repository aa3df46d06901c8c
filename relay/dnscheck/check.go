package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/net/idna"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/resolve"
)

// Checker checks the DNS of a mail domain for sending and receiving mail
// through this smarthost. Set its fields before the first call; it is then
// safe for concurrent use.
type Checker struct {
	// Resolver answers every DNS query; tests inject resolvetest.Resolver.
	Resolver resolve.Resolver
	// Hostname is this server's name, the configuration's hostname: the
	// name whose addresses SPF must authorise, whose reverse DNS receivers
	// check, and which an MX may name. "" skips those checks.
	Hostname string
	// Keys are the configured DKIM keys in configuration order
	// (dkim.Table.Keys). The ones that sign mail from the domain are
	// checked; see [Checker.Check].
	Keys []*dkim.Key
	// HTTP fetches the MTA-STS policy; [PolicyClient] builds the one to
	// use. nil means the policy is not fetched, and the report says so.
	HTTP *http.Client
}

// Check looks up the records of domain and returns the findings. It fails
// only when domain is not a domain name; a DNS failure is a finding
// ("dns-temporary"), never a missing record, since an unanswered query
// says nothing about what is published.
//
// The DKIM keys checked are those that sign mail from domain, chosen as
// dkim.Table chooses for a From address at domain: the first key, in
// configuration order, whose sign patterns cover domain decides the
// signing domain, and every later key of that signing domain that also
// covers it signs too. Keys of other domains are not checked (`smarthost
// dkim testkey` checks them all): they say nothing about this domain.
//
// Lookups run one after the other, each bounded by the Resolver.
func (c *Checker) Check(ctx context.Context, domain string) (Report, error) {
	d, ok := normalize(domain)
	if !ok {
		return Report{}, fmt.Errorf("dnscheck: %q is not a domain name; write e.g. example.com", domain)
	}
	r := &run{ctx: ctx, res: c.Resolver, domain: d, http: c.HTTP, keys: signingKeys(c.Keys, d)}
	if c.Hostname != "" {
		r.host.name, _ = normalize(c.Hostname)
		if r.host.name == "" {
			r.host.name = c.Hostname
		}
		r.host.addrs, r.host.err = r.res.LookupNetIP(ctx, "ip", r.host.name)
	}
	r.checkMX()
	r.checkSPF()
	r.checkDKIM()
	r.checkDMARC()
	r.checkPTR()
	r.checkMTASTS()
	r.checkTLSRPT()
	return Report{Domain: d, Findings: r.findings}, nil
}

// run is the state of one [Checker.Check].
type run struct {
	ctx    context.Context
	res    resolve.Resolver
	http   *http.Client
	domain string
	host   host
	keys   []*dkim.Key // the keys that sign mail from domain
	// mxHosts are the MX host names found (no null MX), for MTA-STS.
	mxHosts  []string
	findings []Finding
}

// host is this server's hostname and its addresses.
type host struct {
	name  string // "" when no hostname is configured
	addrs []netip.Addr
	err   error // of the A/AAAA lookup
}

// known reports whether the hostname's addresses are known.
func (h host) known() bool { return h.name != "" && h.err == nil && len(h.addrs) > 0 }

// has reports whether a is one of the hostname's addresses.
func (h host) has(a netip.Addr) bool {
	return slices.Contains(h.addrs, a.Unmap()) || slices.Contains(h.addrs, a)
}

func (r *run) add(f Finding) { r.findings = append(r.findings, f) }

// lookupFailed is the finding for a query that got no answer (SERVFAIL,
// timeout, refused): whether the record exists is unknown.
func lookupFailed(c Check, query string, err error) Finding {
	return Finding{Check: c, Level: LevelError, ID: "dns-temporary",
		Text: fmt.Sprintf("lookup of %s failed (%s): whether it is published is unknown", query, dnsReason(err)),
		Fix:  "check the DNS server ([dns] server, or the system resolver) and run the check again"}
}

// dnsReason says why a lookup failed, without the server's address (which
// the resolver puts in its errors and which varies from run to run).
func dnsReason(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Err
	}
	return err.Error()
}

// normalize returns a domain name as lower-case A-labels without the
// trailing dot, and whether it is a valid domain name of at least two
// labels.
//
// Names in ASCII are taken as they are: DNS names such as _spf.example.com
// or _dmarc.example.com hold underscores, which IDNA's host name rules
// refuse. Others are converted with IDNA's lookup profile.
func normalize(name string) (string, bool) {
	d := strings.TrimSuffix(strings.TrimSpace(name), ".")
	if !isASCII(d) {
		var err error
		if d, err = idna.Lookup.ToASCII(d); err != nil {
			return "", false
		}
	}
	if !config.ValidDomain(d) || !strings.Contains(d, ".") {
		return "", false
	}
	return strings.ToLower(d), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// signingKeys returns the keys that sign mail from domain; see
// [Checker.Check] for the rule, which is dkim.Table's for one address.
func signingKeys(keys []*dkim.Key, domain string) []*dkim.Key {
	var chosen []*dkim.Key
	for _, k := range keys {
		if (len(chosen) == 0 || k.Domain == chosen[0].Domain) && coversDomain(k, domain) {
			chosen = append(chosen, k)
		}
	}
	return chosen
}

// coversDomain reports whether some sign pattern of k matches addresses
// at domain, whatever their local part.
func coversDomain(k *dkim.Key, domain string) bool {
	for _, p := range k.Sign {
		if (config.AddressPattern{Local: "*", Domain: p.Domain}).Match("postmaster@" + domain) {
			return true
		}
	}
	return false
}

// joinAddrs formats addresses as "192.0.2.1, 2001:db8::1".
func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
