package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// validator collects problems; it never stops at the first.
type validator struct {
	file     string
	lines    map[string]int
	problems []Problem
}

func (v *validator) add(key, msg, fix string, warning bool) {
	v.problems = append(v.problems, Problem{File: v.file, Line: v.line(key), Key: key, Message: msg, Fix: fix, Warning: warning})
}

func (v *validator) errorf(key, msg, fix string) { v.add(key, msg, fix, false) }
func (v *validator) warnf(key, msg, fix string)  { v.add(key, msg, fix, true) }

// line finds the line of key, falling back to its closest known parent.
// Keys inside arrays of tables from the decoder carry no index; they match
// the first element that has the key.
func (v *validator) line(key string) int {
	if n, ok := v.lines[key]; ok {
		return n
	}
	stripped := indexRE.ReplaceAllString(key, "")
	best := 0
	for k, n := range v.lines {
		if indexRE.ReplaceAllString(k, "") == stripped && (best == 0 || n < best) {
			best = n
		}
	}
	if best > 0 {
		return best
	}
	if i := strings.LastIndexAny(key, ".["); i > 0 {
		return v.line(key[:i])
	}
	return 0
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// parsed reports a value that failed to parse while decoding.
func (v *validator) parsed(key string, p interface{ problem() (string, bool) }, fix string) bool {
	if msg, bad := p.problem(); bad {
		v.errorf(key, msg, fix)
		return false
	}
	return true
}

func (v *validator) validate(c *Config) {
	if !ValidDomain(c.Hostname) || !strings.Contains(c.Hostname, ".") {
		v.errorf("hostname", fmt.Sprintf("%q is not a fully qualified host name", c.Hostname),
			`set it to the name in this server's MX and PTR records, e.g. "mail.example.org"`)
	}
	if c.StateDir == "" {
		v.errorf("state_dir", "empty", `set it to a directory smarthost may write, e.g. "/var/lib/smarthost"`)
	}
	for i, n := range c.TrustedNetworks {
		key := keyPath("trusted_networks") + index(i)
		if v.parsed(key, n, "") && (n.Bits() < 8 || n.Addr().Is6() && n.Bits() < 32) && !n.Addr().IsLoopback() {
			v.warnf(key, fmt.Sprintf("%s lets a large part of the Internet relay without AUTH", n.Prefix),
				"list only your own networks, e.g. 127.0.0.0/8 and the home server's address")
		}
	}
	for i, d := range c.RelayDomains {
		key := keyPath("relay_domains") + index(i)
		c.RelayDomains[i] = lower(strings.TrimSuffix(d, "."))
		if !ValidDomain(strings.TrimPrefix(c.RelayDomains[i], ".")) {
			v.errorf(key, fmt.Sprintf("%q is not a domain", d), `write e.g. "example.com", or ".example.com" for its subdomains`)
		}
	}
	v.relayRecipients(c)
	v.listeners(c)
	v.tls(c)
	v.auth(c)
	v.dkim(c)
	v.transport(c)
	v.delivery(c)
	v.dns(c)
	v.limits(c)
	v.inbound(c)
	if a := c.Metrics.Address; a != "" {
		if host, _, err := net.SplitHostPort(a); err != nil {
			v.errorf("metrics.address", fmt.Sprintf("%q is not host:port", a), `write e.g. "127.0.0.1:9325"`)
		} else if !isLoopback(host) {
			v.warnf("metrics.address", fmt.Sprintf("%s is reachable from other hosts", a), "bind it to 127.0.0.1 or a private address and let the scraper reach it there")
		}
	}
}

func (v *validator) relayRecipients(c *Config) {
	for i, r := range c.RelayRecipients {
		key := keyPath("relay_recipients") + index(i)
		c.RelayRecipients[i] = lower(r)
		if !validRecipientEntry(r) {
			v.errorf(key, fmt.Sprintf("%q is not an address or @domain", r), `write e.g. "alice@example.com" or "@example.com"`)
		}
	}
	if c.RelayRecipientsFile != "" {
		v.readable("relay_recipients_file", c.RelayRecipientsFile)
	}
	if c.VerifyRecipients && len(c.Transport) == 0 && c.Delivery.Relayhost.IsZero() {
		v.warnf("verify_recipients", "relay domains are delivered by MX lookup, so the probe may ask ourselves",
			"route relay domains to the home server with [transport] entries")
	}
}

// validRecipientEntry accepts "local@domain" and "@domain".
func validRecipientEntry(r string) bool {
	at := strings.LastIndexByte(r, '@')
	return at >= 0 && ValidDomain(r[at+1:]) && !strings.ContainsAny(r[:at], " \t<>\"")
}

func (v *validator) inbound(c *Config) {
	in := c.Inbound
	for _, m := range []struct {
		key  string
		mode CheckMode
	}{{"inbound.spf", in.SPF}, {"inbound.dkim", in.DKIM}, {"inbound.dmarc", in.DMARC}} {
		if !m.mode.Valid() {
			v.errorf(m.key, fmt.Sprintf("unknown mode %q", m.mode), `use "off", "tag" or "enforce"`)
		}
	}
	if in.QuarantineHeader != "" {
		name, value, ok := strings.Cut(in.QuarantineHeader, ":")
		if !ok || !headerNameRE.MatchString(name) || strings.TrimSpace(value) == "" || strings.ContainsAny(value, "\r\n") {
			v.errorf("inbound.quarantine_header", fmt.Sprintf("%q is not a header field", in.QuarantineHeader), `write e.g. "X-Spam-Flag: YES"`)
		}
	}
	for i, z := range in.DNSBL {
		if !ValidDomain(strings.TrimSuffix(z, ".")) {
			v.errorf(keyPath("inbound", "dnsbl")+index(i), fmt.Sprintf("%q is not a DNS zone", z), `write e.g. "zen.spamhaus.org"`)
		}
	}
	v.positive("inbound.greylist_delay", in.GreylistDelay, `e.g. "5m"`)
	v.positive("inbound.greylist_retention", in.GreylistRetention, `e.g. "35d"`)
}

var headerNameRE = regexp.MustCompile(`^[!-9;-~]+$`)

func (v *validator) listeners(c *Config) {
	if len(c.Listeners) == 0 {
		v.errorf("listener", "no listeners", "add at least one [[listener]] with name, address, tls and role")
	}
	names := map[string]bool{}
	addrs := map[string]bool{}
	for i, l := range c.Listeners {
		key := func(k string) string { return keyPath("listener") + index(i) + "." + k }
		if l.Name == "" {
			v.errorf(key("name"), "missing", `give every listener a name, e.g. name = "submissions"`)
		} else if names[l.Name] {
			v.errorf(key("name"), fmt.Sprintf("%q is used twice", l.Name), "give each listener its own name")
		}
		names[l.Name] = true
		host, port, err := net.SplitHostPort(l.Address)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			v.errorf(key("address"), fmt.Sprintf("%q is not host:port", l.Address), `write e.g. ":465" or "127.0.0.1:2525"`)
		} else if addrs[l.Address] && port != "0" {
			v.errorf(key("address"), fmt.Sprintf("%q is used by two listeners", l.Address), "give each listener its own address")
		}
		addrs[l.Address] = true
		if !l.TLS.Valid() {
			v.errorf(key("tls"), fmt.Sprintf("unknown TLS mode %q", l.TLS), `use "implicit", "starttls" or "none"`)
		}
		if !l.Role.Valid() {
			v.errorf(key("role"), fmt.Sprintf("unknown role %q", l.Role), `use "submission" or "mx"`)
		}
		if l.TLS == TLSNone && err == nil && !isLoopback(host) {
			v.warnf(key("tls"), fmt.Sprintf("listener %q sends everything in plain text on a non-loopback address", l.Name),
				`use tls = "starttls" or "implicit", or bind it to 127.0.0.1`)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (v *validator) tls(c *Config) {
	needTLS := false
	for _, l := range c.Listeners {
		needTLS = needTLS || l.TLS == TLSImplicit || l.TLS == TLSStartTLS
	}
	t := c.TLS
	sources := 0
	if t.CertFile != "" || t.KeyFile != "" {
		sources++
	}
	if len(t.ACMEDomains) > 0 {
		sources++
	}
	if t.SelfSigned {
		sources++
	}
	switch {
	case sources > 1:
		v.errorf("tls", "more than one certificate source", "set only one of cert_file/key_file, acme_domains or self_signed")
	case sources == 0 && needTLS:
		v.errorf("tls", "listeners use TLS but no certificate is configured",
			`set cert_file and key_file (e.g. Let's Encrypt's fullchain.pem and privkey.pem), acme_domains, or self_signed = true for testing`)
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" {
			v.errorf("tls.cert_file", "missing", "set it to the certificate chain, e.g. /etc/letsencrypt/live/NAME/fullchain.pem")
		} else {
			v.readable("tls.cert_file", t.CertFile)
		}
		if t.KeyFile == "" {
			v.errorf("tls.key_file", "missing", "set it to the private key, e.g. /etc/letsencrypt/live/NAME/privkey.pem")
		} else {
			v.readable("tls.key_file", t.KeyFile)
		}
	}
	for i, d := range t.ACMEDomains {
		if !ValidDomain(d) {
			v.errorf(keyPath("tls", "acme_domains")+index(i), fmt.Sprintf("%q is not a domain", d), `write e.g. "mail.example.org"`)
		}
	}
	if len(t.ACMEDomains) > 0 {
		if _, _, err := net.SplitHostPort(t.ACMEHTTPAddress); err != nil {
			v.errorf("tls.acme_http_address", fmt.Sprintf("%q is not host:port", t.ACMEHTTPAddress), `write e.g. ":80"`)
		}
	}
	if t.SelfSigned && needTLS {
		v.warnf("tls.self_signed", "a self-signed certificate is for testing", "use cert_file/key_file or acme_domains in production")
	}
}

// readable checks that a file exists and can be opened by this process.
func (v *validator) readable(key, path string) {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(key, fmt.Sprintf("%s does not exist", path), "check the path")
	case errors.Is(err, fs.ErrPermission):
		v.errorf(key, fmt.Sprintf("%s: permission denied", path), "make it readable by the user smarthost runs as (group smarthost)")
	case err != nil:
		v.errorf(key, err.Error(), "check the path")
	default:
		f.Close()
	}
}

func (v *validator) auth(c *Config) {
	a := c.Auth
	if a.MaxFailures < 1 {
		v.errorf("auth.max_failures", fmt.Sprintf("%d is too small", a.MaxFailures), "use a number of 1 or more, e.g. 3")
	}
	v.positive("auth.failure_window", a.FailureWindow, "e.g. \"20m\"")
	v.positive("auth.ban_time", a.BanTime, "e.g. \"24h\"")
	users := make([]string, 0, len(a.Senders))
	for u := range a.Senders {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		for i, p := range a.Senders[u] {
			v.parsed(keyPath("auth", "senders", u)+index(i), p, `write e.g. "*@example.com" or "alice@example.com"`)
		}
	}
	hasSubmission := false
	for _, l := range c.Listeners {
		hasSubmission = hasSubmission || (l.Role == RoleSubmission && l.TLS != TLSNone)
	}
	if hasSubmission {
		if _, err := os.Stat(a.UsersFile); errors.Is(err, fs.ErrNotExist) {
			v.warnf("auth.users_file", fmt.Sprintf("%s does not exist, so nobody can log in", a.UsersFile),
				"add a user with `smarthost user add NAME`")
		}
	}
}

var selectorRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

func (v *validator) dkim(c *Config) {
	parts := strings.Split(c.DKIM.Canonicalization, "/")
	okCanon := func(s string) bool { return s == "relaxed" || s == "simple" }
	if len(parts) != 2 || !okCanon(parts[0]) || !okCanon(parts[1]) {
		v.errorf("dkim.canonicalization", fmt.Sprintf("%q is not header/body canonicalization", c.DKIM.Canonicalization),
			`use "relaxed/simple" (recommended), "relaxed/relaxed", "simple/simple" or "simple/relaxed"`)
	}
	seen := map[string]bool{}
	for i, k := range c.DKIM.Keys {
		key := func(f string) string { return keyPath("dkim", "key") + index(i) + "." + f }
		c.DKIM.Keys[i].Domain = lower(strings.TrimSuffix(k.Domain, "."))
		if !ValidDomain(c.DKIM.Keys[i].Domain) {
			v.errorf(key("domain"), fmt.Sprintf("%q is not a domain", k.Domain), `write e.g. "example.com"`)
		}
		if !selectorRE.MatchString(k.Selector) {
			v.errorf(key("selector"), fmt.Sprintf("%q is not a DKIM selector", k.Selector), `write e.g. "default" or "2026a"`)
		}
		id := k.Selector + "._domainkey." + c.DKIM.Keys[i].Domain
		if seen[id] {
			v.errorf(key("selector"), fmt.Sprintf("%s is configured twice", id), "give each key its own selector")
		}
		seen[id] = true
		if k.PrivateKey == "" {
			v.errorf(key("private_key"), "missing", "create a key with `smarthost dkim keygen -domain D -selector S` and set its path")
		} else {
			v.readable(key("private_key"), k.PrivateKey)
		}
		for j, p := range k.Sign {
			v.parsed(key("sign")+index(j), p, `write e.g. "*@example.com" or "*@*.example.com"`)
		}
	}
}

func (v *validator) transport(c *Config) {
	keys := make([]string, 0, len(c.Transport))
	for k := range c.Transport {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	normalized := make(map[string]NextHop, len(keys))
	for _, k := range keys {
		// Lookups are case-insensitive (RFC 5321 §2.4 for domains; Postfix
		// lower-cases the whole key too).
		normalized[lower(strings.TrimSuffix(k, "."))] = c.Transport[k]
		key := keyPath("transport", k)
		if !validTransportKey(k) {
			v.errorf(key, fmt.Sprintf("%q is not an address, domain, .domain or *", k), `write e.g. "example.com" or "user@example.com"`)
		}
		h := c.Transport[k]
		if v.parsed(key, h, `write e.g. "smtp:[home.example.com]:10025"`) && h.IsZero() {
			v.errorf(key, "empty next hop", `write e.g. "smtp:[home.example.com]:10025"`)
		}
	}
	c.Transport = normalized
	for i, d := range c.RelayDomains {
		if !routedByTransport(d, normalized) {
			v.warnf(keyPath("relay_domains")+index(i), fmt.Sprintf("%s has no [transport] entry, so its mail is delivered by MX lookup — which points back here", d),
				fmt.Sprintf(`add e.g. "%s" = "smtp:[home.%s]:10025" to [transport]`, strings.TrimPrefix(d, "."), strings.TrimPrefix(d, ".")))
		}
	}
}

// routedByTransport reports whether mail for relay domain d has an explicit
// next hop: an entry for the domain itself or a parent (".parent"); "*"
// counts too, since it routes everything.
func routedByTransport(d string, t map[string]NextHop) bool {
	if _, ok := t["*"]; ok {
		return true
	}
	d = strings.TrimPrefix(d, ".")
	if _, ok := t[d]; ok {
		return true
	}
	for labels := d; strings.Contains(labels, "."); {
		labels = labels[strings.IndexByte(labels, '.')+1:]
		if _, ok := t["."+labels]; ok {
			return true
		}
	}
	_, ok := t["."+d]
	return ok
}

// validTransportKey accepts the lookup keys of a transport map: "*", a
// domain, ".domain" for its subdomains, or local@domain.
func validTransportKey(k string) bool {
	if k == "*" {
		return true
	}
	if at := strings.LastIndexByte(k, '@'); at >= 0 {
		return at > 0 && ValidDomain(k[at+1:]) && !strings.ContainsAny(k[:at], " \t<>\"")
	}
	return ValidDomain(strings.TrimPrefix(k, "."))
}

func (v *validator) delivery(c *Config) {
	d := c.Delivery
	v.parsed("delivery.relayhost", d.Relayhost, `write e.g. "smtps:[smtp.provider.example]:465"`)
	if !d.TLS.Valid() {
		v.errorf("delivery.tls", fmt.Sprintf("unknown policy %q", d.TLS), `use "may", "encrypt" or "verify"`)
	}
	policy := make(map[string]DeliveryTLS, len(d.TLSPolicy))
	for dest, p := range d.TLSPolicy {
		policy[lower(strings.TrimSuffix(dest, "."))] = p
		key := keyPath("delivery", "tls_policy", dest)
		if !ValidDomain(strings.TrimPrefix(dest, ".")) {
			v.errorf(key, fmt.Sprintf("%q is not a domain or host", dest), `write e.g. "example.net"`)
		}
		if !p.Valid() {
			v.errorf(key, fmt.Sprintf("unknown policy %q", p), `use "may", "encrypt" or "verify"`)
		}
	}
	c.Delivery.TLSPolicy = policy
	if len(d.Retry) == 0 {
		v.errorf("delivery.retry", "empty", `list the waits between attempts, e.g. ["1m", "5m", "15m", "1h"]`)
	}
	for i, r := range d.Retry {
		v.positive(keyPath("delivery", "retry")+index(i), r, `e.g. "5m"`)
	}
	v.positive("delivery.max_lifetime", d.MaxLifetime, `e.g. "5d"`)
	v.positive("delivery.connect_timeout", d.ConnectTimeout, `e.g. "30s"`)
	v.positive("delivery.command_timeout", d.CommandTimeout, `e.g. "5m"`)
	if d.Concurrency < 1 {
		v.errorf("delivery.concurrency", fmt.Sprintf("%d is too small", d.Concurrency), "use 1 or more, e.g. 20")
	}
	if d.DestinationConcurrency < 1 {
		v.errorf("delivery.destination_concurrency", fmt.Sprintf("%d is too small", d.DestinationConcurrency), "use 1 or more, e.g. 10")
	}
}

func (v *validator) dns(c *Config) {
	if s := c.DNS.Server; s != "" {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			host, port = s, "53"
			c.DNS.Server = net.JoinHostPort(s, "53")
		}
		if _, aerr := netip.ParseAddr(host); aerr != nil {
			v.errorf("dns.server", fmt.Sprintf("%q is not an IP address with optional port", s), `write e.g. "127.0.0.1:53"`)
		} else if p, perr := strconv.Atoi(port); perr != nil || p < 1 || p > 65535 {
			v.errorf("dns.server", fmt.Sprintf("bad port in %q", s), `write e.g. "127.0.0.1:53"`)
		}
	}
	v.positive("dns.timeout", c.DNS.Timeout, `e.g. "10s"`)
}

func (v *validator) limits(c *Config) {
	l := c.Limits
	okSize := v.positiveSize("limits.max_message_size", l.MaxMessageSize, `e.g. "50MiB"`)
	if v.positiveSize("limits.max_line_length", l.MaxLineLength, `e.g. "64KiB"`) {
		// RFC 5321 §4.5.3.1.6: a line is at most 1000 octets with CRLF; we
		// must accept at least that.
		if l.MaxLineLength.Bytes < 1000 {
			v.errorf("limits.max_line_length", fmt.Sprintf("%d is below the 1000 octets RFC 5321 requires", l.MaxLineLength.Bytes), `use e.g. "64KiB"`)
		}
		if okSize && l.MaxLineLength.Bytes > l.MaxMessageSize.Bytes {
			v.errorf("limits.max_line_length", "larger than limits.max_message_size", "make it smaller")
		}
	}
	v.positiveSize("limits.max_header_size", l.MaxHeaderSize, `e.g. "1MiB"`)
	if l.MaxRecipients < 1 {
		v.errorf("limits.max_recipients", fmt.Sprintf("%d is too small", l.MaxRecipients), "use e.g. 100")
	} else if l.MaxRecipients < 100 {
		v.warnf("limits.max_recipients", fmt.Sprintf("%d is below the 100 recipients RFC 5321 §4.5.3.1.8 asks servers to accept", l.MaxRecipients), "use 100 or more")
	}
	v.positive("limits.timeout", l.Timeout, `e.g. "5m"`)
	if l.MaxConnections < 1 {
		v.errorf("limits.max_connections", fmt.Sprintf("%d is too small", l.MaxConnections), "use e.g. 200")
	}
	if l.MaxConnectionsPerIP < 1 {
		v.errorf("limits.max_connections_per_ip", fmt.Sprintf("%d is too small", l.MaxConnectionsPerIP), "use e.g. 20")
	}
}

func (v *validator) positive(key string, d Duration, example string) {
	if v.parsed(key, d, "write a number with a unit (s, m, h, d), "+example) && d.Duration <= 0 {
		v.errorf(key, "must be longer than zero", example)
	}
}

func (v *validator) positiveSize(key string, s Size, example string) bool {
	if !v.parsed(key, s, "write a number with a unit (KiB, MiB, GiB), "+example) {
		return false
	}
	if s.Bytes <= 0 {
		v.errorf(key, "must be larger than zero", example)
		return false
	}
	return true
}

func lower(s string) string { return strings.ToLower(s) }
