package address

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// RFC 5321 §4.5.3.1.1-3 size limits, in octets.
const (
	MaxLocalPart = 64
	MaxDomain    = 255
	MaxPath      = 256 // including the angle brackets
)

// Errors returned by [Parse]. Each means the address is unusable; the
// session maps them to 501/553 replies.
var (
	ErrSyntax  = errors.New("address: bad syntax")
	ErrTooLong = errors.New("address: too long")
)

// Address is a parsed envelope address. The zero value is the null
// reverse-path (MAIL FROM:<>).
type Address struct {
	// Local is the local part, unquoted, case preserved (RFC 5321 §2.4:
	// only the destination host may interpret it).
	Local string
	// Domain is lower-cased for ASCII letters. For an address literal it
	// is the bracketed text, e.g. "[192.0.2.1]".
	Domain string
}

// Parse parses an address as go-smtp passes it to Mail or Rcpt. It rejects
// what no mail server should accept: control characters, a missing or
// invalid domain, a trailing dot, over-long parts, invalid UTF-8.
func Parse(s string) (Address, error) {
	if len(s)+2 > MaxPath {
		return Address{}, ErrTooLong
	}
	if !utf8.ValidString(s) {
		return Address{}, ErrSyntax
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Address{}, ErrSyntax
	}
	a := Address{Local: s[:at], Domain: s[at+1:]}
	if len(a.Local) > MaxLocalPart || len(a.Domain) > MaxDomain {
		return Address{}, ErrTooLong
	}
	for _, r := range a.Local {
		if r < 0x20 || r == 0x7f {
			return Address{}, ErrSyntax
		}
	}
	if strings.HasPrefix(a.Domain, "[") {
		if !strings.HasSuffix(a.Domain, "]") || !validLiteral(a.Domain[1:len(a.Domain)-1]) {
			return Address{}, ErrSyntax
		}
		a.Domain = strings.ToLower(a.Domain)
		return a, nil
	}
	if !validDomain(a.Domain) {
		return Address{}, ErrSyntax
	}
	a.Domain = asciiLower(a.Domain)
	return a, nil
}

// validLiteral accepts IPv4 and "IPv6:" address literals (RFC 5321 §4.1.3).
func validLiteral(s string) bool {
	if v6, ok := strings.CutPrefix(strings.ToLower(s), "ipv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6()
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// validDomain checks RFC 5321 domain syntax, allowing UTF-8 labels (RFC
// 6531) and underscores. A trailing dot is not allowed: it is not SMTP
// syntax, and accepting it would make "example.com." and "example.com"
// compare differently in relay checks.
func validDomain(d string) bool {
	if d == "" || len(d) > MaxDomain {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r >= 0x80
			if !ok {
				return false
			}
		}
	}
	return true
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// IsNull reports whether a is the null reverse-path.
func (a Address) IsNull() bool { return a.Local == "" && a.Domain == "" }

// IsLiteral reports whether the domain is an address literal such as
// [192.0.2.1]. Mail to a literal bypasses MX routing.
func (a Address) IsLiteral() bool { return strings.HasPrefix(a.Domain, "[") }

// HasRouting reports whether the local part carries sender-specified
// routing that a downstream MTA might act on: user%host (the percent hack),
// host!user (UUCP bang path) or a quoted "user@host". Postfix calls this
// untrusted routing (allow_untrusted_routing) and refuses to relay it.
func (a Address) HasRouting() bool { return strings.ContainsAny(a.Local, "@%!") }

// IsASCII reports whether the address needs no SMTPUTF8.
func (a Address) IsASCII() bool {
	for i := 0; i < len(a.Local); i++ {
		if a.Local[i] >= 0x80 {
			return false
		}
	}
	for i := 0; i < len(a.Domain); i++ {
		if a.Domain[i] >= 0x80 {
			return false
		}
	}
	return true
}

// String formats the address for the wire and for logs: local@domain with
// the local part quoted (RFC 5321 §4.1.2 Quoted-string) when it is not a
// dot-string. The null address is "".
func (a Address) String() string {
	if a.IsNull() {
		return ""
	}
	return quoteLocal(a.Local) + "@" + a.Domain
}

func quoteLocal(l string) string {
	if isDotString(l) {
		return l
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range l {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether l is an RFC 5321 Dot-string: atoms of atext
// (RFC 5322 §3.2.3, plus UTF-8 per RFC 6531) separated by single dots.
func isDotString(l string) bool {
	if l == "" || l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return false
	}
	for _, r := range l {
		if r >= 0x80 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r) {
			return false
		}
	}
	return true
}
