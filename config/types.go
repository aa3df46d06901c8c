package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The typed values below parse themselves while the TOML is decoded. A value
// that does not parse does not stop decoding: it keeps the raw text and the
// reason, and validation reports it together with every other problem, so
// `smarthost check` shows all of them in one pass.

// invalid records a value that failed to parse.
type invalid struct {
	raw    string
	reason string
}

func (v invalid) problem() (string, bool) {
	if v.reason == "" {
		return "", false
	}
	return fmt.Sprintf("%q: %s", v.raw, v.reason), true
}

// Size is a number of bytes, written with an optional unit: "50MiB", "64KiB",
// "10MB", "1024". Binary units (KiB, MiB, GiB) are powers of 1024, decimal
// units (kB, KB, MB, GB) powers of 1000.
type Size struct {
	Bytes int64
	invalid
}

// ParseSize parses a size such as "50MiB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("not a size")
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number too large")
	}
	units := map[string]int64{
		"": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
		"kB": 1000, "KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000,
	}
	mult, ok := units[strings.TrimSpace(t[i:])]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q; use B, KiB, MiB, GiB, kB, MB or GB", strings.TrimSpace(t[i:]))
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size too large")
	}
	return n * mult, nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It never fails; see the
// comment at the top of this file.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := ParseSize(string(b))
	if err != nil {
		*s = Size{invalid: invalid{raw: string(b), reason: err.Error()}}
		return nil
	}
	*s = Size{Bytes: n, invalid: invalid{raw: string(b)}}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(s.Bytes, 10)), nil }

// Duration is a Go duration with one more unit, "d" for days: "20m", "24h",
// "5d", "1d12h".
type Duration struct {
	time.Duration
	invalid
}

// ParseDuration parses a duration such as "5d" or "1h30m".
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.ParseUint(t[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("not a duration")
		}
		days = time.Duration(n) * 24 * time.Hour
		t = t[i+1:]
		if t == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("not a duration")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return days + d, nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It never fails; see the
// comment at the top of this file.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		*d = Duration{invalid: invalid{raw: string(b), reason: err.Error()}}
		return nil
	}
	*d = Duration{Duration: v, invalid: invalid{raw: string(b)}}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Network is an IP prefix such as "192.0.2.0/24"; a bare address is a /32 or
// /128.
type Network struct {
	netip.Prefix
	invalid
}

// UnmarshalText implements encoding.TextUnmarshaler. It never fails; see the
// comment at the top of this file.
func (n *Network) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			*n = Network{invalid: invalid{raw: s, reason: "not an IP address or CIDR network; write e.g. 192.0.2.0/24 or 2001:db8::/32"}}
			return nil
		}
		*n = Network{Prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}
		return nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		*n = Network{invalid: invalid{raw: s, reason: "not an IP address or CIDR network; write e.g. 192.0.2.0/24 or 2001:db8::/32"}}
		return nil
	}
	if p.Masked() != p {
		*n = Network{invalid: invalid{raw: s, reason: fmt.Sprintf("host bits set; did you mean %s?", p.Masked())}}
		return nil
	}
	*n = Network{Prefix: p}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (n Network) MarshalText() ([]byte, error) { return []byte(n.Prefix.String()), nil }

// Transport is the delivery method of a next hop.
type Transport string

const (
	// TransportSMTP is plain SMTP, upgraded with STARTTLS as policy allows.
	TransportSMTP Transport = "smtp"
	// TransportSMTPS is SMTP over implicit TLS (RFC 8314), port 465.
	TransportSMTPS Transport = "smtps"
)

// DefaultPort is the port used when a next hop names none.
func (t Transport) DefaultPort() int {
	if t == TransportSMTPS {
		return 465
	}
	return 25
}

// NextHop is where mail goes next, in Postfix's syntax:
//
//	smtp:[host]:port    that host, no MX lookup
//	smtp:[192.0.2.1]    an address, no MX lookup
//	smtp:host           MX lookup of host
//	smtps:[host]:465    implicit TLS
//	[host]:port         as smtp:[host]:port (Postfix relayhost form)
//
// The zero NextHop is "not set".
type NextHop struct {
	Transport Transport
	// Host is a host name or IP address, without brackets.
	Host string
	// Port is the TCP port; 0 means the transport's default.
	Port int
	// MX is true when Host is a domain whose MX records are looked up
	// (the unbracketed form).
	MX bool
	invalid
}

// IsZero reports whether no next hop is set.
func (h NextHop) IsZero() bool { return h.Host == "" && h.reason == "" }

// Address is host:port for a bracketed next hop.
func (h NextHop) Address() string {
	port := h.Port
	if port == 0 {
		port = h.Transport.DefaultPort()
	}
	return netJoin(h.Host, port)
}

// String formats the next hop back into Postfix syntax.
func (h NextHop) String() string {
	if h.IsZero() {
		return ""
	}
	host := h.Host
	if !h.MX {
		host = "[" + host + "]"
	}
	if h.Port != 0 {
		host += ":" + strconv.Itoa(h.Port)
	}
	return string(h.Transport) + ":" + host
}

func netJoin(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// ParseNextHop parses Postfix next-hop syntax; see [NextHop].
func ParseNextHop(s string) (NextHop, error) {
	rest := strings.TrimSpace(s)
	h := NextHop{Transport: TransportSMTP}
	if !strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			t := Transport(strings.ToLower(rest[:i]))
			if t != TransportSMTP && t != TransportSMTPS {
				return NextHop{}, fmt.Errorf("unknown transport %q; use smtp or smtps", rest[:i])
			}
			h.Transport = t
			rest = rest[i+1:]
		}
	}
	if rest == "" {
		return NextHop{}, fmt.Errorf("no host; write e.g. smtp:[host.example]:10025")
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return NextHop{}, fmt.Errorf("missing ']'; write e.g. smtp:[host.example]:10025")
		}
		h.Host = rest[1:end]
		rest = rest[end+1:]
	} else {
		h.MX = true
		h.Host = rest
		rest = ""
		if i := strings.LastIndexByte(h.Host, ':'); i >= 0 {
			h.Host, rest = h.Host[:i], h.Host[i:]
		}
	}
	if rest != "" {
		if rest[0] != ':' {
			return NextHop{}, fmt.Errorf("unexpected %q after host", rest)
		}
		p, err := strconv.Atoi(rest[1:])
		if err != nil || p < 1 || p > 65535 {
			return NextHop{}, fmt.Errorf("bad port %q; use a number from 1 to 65535", rest[1:])
		}
		h.Port = p
	}
	h.Host = strings.ToLower(strings.TrimSuffix(h.Host, "."))
	if a, err := netip.ParseAddr(h.Host); err == nil {
		if h.MX {
			return NextHop{}, fmt.Errorf("an IP address must be in brackets: [%s]", h.Host)
		}
		h.Host = a.String()
	} else if !ValidDomain(h.Host) {
		return NextHop{}, fmt.Errorf("bad host name %q", h.Host)
	}
	return h, nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It never fails; see the
// comment at the top of this file.
func (h *NextHop) UnmarshalText(b []byte) error {
	if strings.TrimSpace(string(b)) == "" {
		*h = NextHop{}
		return nil
	}
	v, err := ParseNextHop(string(b))
	if err != nil {
		*h = NextHop{invalid: invalid{raw: string(b), reason: err.Error()}}
		return nil
	}
	*h = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (h NextHop) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// AddressPattern matches mail addresses: "*@example.com" (any user at the
// domain), "*@*.example.com" (any subdomain), "user@example.com" (exactly
// that address), "@example.com" (same as "*@example.com") or "*" (anything).
// Matching ignores case.
type AddressPattern struct {
	Local  string // "*" or a literal local part, lower-cased
	Domain string // "*", "*.suffix" or a literal domain, lower-cased
	invalid
}

// ParseAddressPattern parses a pattern; see [AddressPattern].
func ParseAddressPattern(s string) (AddressPattern, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "*" {
		return AddressPattern{Local: "*", Domain: "*"}, nil
	}
	at := strings.LastIndexByte(t, '@')
	if at < 0 {
		return AddressPattern{}, fmt.Errorf("not an address pattern; write e.g. *@example.com or user@example.com")
	}
	p := AddressPattern{Local: t[:at], Domain: strings.TrimSuffix(t[at+1:], ".")}
	if p.Local == "" {
		p.Local = "*"
	}
	if strings.ContainsAny(p.Local, " \t\"<>") || (strings.Contains(p.Local, "*") && p.Local != "*") {
		return AddressPattern{}, fmt.Errorf("bad local part; use * or an exact local part")
	}
	d := strings.TrimPrefix(p.Domain, "*.")
	if p.Domain != "*" && !ValidDomain(d) {
		return AddressPattern{}, fmt.Errorf("bad domain; use e.g. example.com or *.example.com")
	}
	return p, nil
}

// Match reports whether the address (local@domain) matches the pattern.
func (p AddressPattern) Match(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	local, domain := strings.ToLower(addr[:at]), strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	if p.Local != "*" && p.Local != local {
		return false
	}
	switch {
	case p.Domain == "*":
		return true
	case strings.HasPrefix(p.Domain, "*."):
		return strings.HasSuffix(domain, p.Domain[1:])
	default:
		return domain == p.Domain
	}
}

// String formats the pattern back.
func (p AddressPattern) String() string {
	if p.Local == "*" && p.Domain == "*" {
		return "*"
	}
	return p.Local + "@" + p.Domain
}

// UnmarshalText implements encoding.TextUnmarshaler. It never fails; see the
// comment at the top of this file.
func (p *AddressPattern) UnmarshalText(b []byte) error {
	v, err := ParseAddressPattern(string(b))
	if err != nil {
		*p = AddressPattern{invalid: invalid{raw: string(b), reason: err.Error()}}
		return nil
	}
	*p = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (p AddressPattern) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// TLSMode is how a listener uses TLS.
type TLSMode string

const (
	// TLSImplicit starts TLS before the greeting (port 465, RFC 8314).
	TLSImplicit TLSMode = "implicit"
	// TLSStartTLS offers STARTTLS (ports 25 and 587).
	TLSStartTLS TLSMode = "starttls"
	// TLSNone never offers TLS; for loopback testing only.
	TLSNone TLSMode = "none"
)

// Valid reports whether m is a known mode.
func (m TLSMode) Valid() bool { return m == TLSImplicit || m == TLSStartTLS || m == TLSNone }

// Role is what a listener is for.
type Role string

const (
	// RoleSubmission requires AUTH or a trusted network, DKIM-signs and
	// relays anywhere.
	RoleSubmission Role = "submission"
	// RoleMX accepts mail from anyone for relay domains only, offers no
	// AUTH and runs inbound checks.
	RoleMX Role = "mx"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleSubmission || r == RoleMX }

// DeliveryTLS is the outbound TLS policy, as Postfix's smtp_tls_security_level.
type DeliveryTLS string

const (
	// DeliveryTLSMay uses STARTTLS when offered and falls back to plain
	// text when the handshake fails.
	DeliveryTLSMay DeliveryTLS = "may"
	// DeliveryTLSEncrypt requires TLS but does not check the certificate.
	DeliveryTLSEncrypt DeliveryTLS = "encrypt"
	// DeliveryTLSVerify requires TLS with a certificate valid for the host.
	DeliveryTLSVerify DeliveryTLS = "verify"
)

// Valid reports whether t is a known policy.
func (t DeliveryTLS) Valid() bool {
	return t == DeliveryTLSMay || t == DeliveryTLSEncrypt || t == DeliveryTLSVerify
}

// TLSSource is where listener certificates come from.
type TLSSource string

const (
	TLSFromFiles  TLSSource = "files"
	TLSFromACME   TLSSource = "acme"
	TLSSelfSigned TLSSource = "self_signed"
)

// ValidDomain reports whether s is a syntactically valid DNS domain name:
// dot-separated labels of letters, digits, hyphens and (for
// internationalised names) UTF-8, each 1-63 octets, 253 octets in all, no
// trailing dot. It does not accept IP addresses in brackets.
func ValidDomain(s string) bool {
	if s == "" || len(s) > 253 || !utf8.ValidString(s) {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c >= 0x80
			if !ok {
				return false
			}
		}
	}
	return true
}
