package dkim

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Errors returned by [ParseFrom]. The SMTP session answers each with its own
// 550 5.7.1 reply (relay/reply NoFromHeader, MultipleFromHeaders,
// BadFromHeader). The error text adds the detail for the log.
var (
	ErrNoFrom       = errors.New("dkim: message has no From header")
	ErrMultipleFrom = errors.New("dkim: message has several From headers")
	ErrBadFrom      = errors.New("dkim: From header does not hold exactly one valid address")
)

// ParseFrom returns the address (local@domain, the local part unquoted) in
// the From: header of a message's header section, as read by [ReadHeader]. The result chooses the
// signing keys ([Table.Signer]) and is what DMARC aligns with.
//
// It requires exactly one From: field holding exactly one mailbox, because
// DMARC can evaluate nothing else (RFC 7489 §6.6.1) and RFC 5322 §3.6 allows
// one From: field only. It returns [ErrNoFrom], [ErrMultipleFrom] or
// [ErrBadFrom] (wrapped, with the detail) for a missing field, several
// fields, or a value that is not one mailbox: unparseable, a list, group
// syntax, an address literal instead of a domain, or bytes that are not
// UTF-8. Folded fields and RFC 2047 encoded words in the display name are
// fine, in any charset: only the address is returned.
func ParseFrom(header []byte) (string, error) {
	var from []field
	for _, f := range splitFields(header) {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f)
		}
	}
	switch len(from) {
	case 0:
		return "", ErrNoFrom
	case 1:
	default:
		return "", fmt.Errorf("%w: %d fields", ErrMultipleFrom, len(from))
	}
	v := unfold(from[0].value())
	if !utf8.ValidString(v) {
		// RFC 5322 allows ASCII only and RFC 6532 adds UTF-8; raw 8-bit
		// text in another charset is neither.
		return "", fmt.Errorf("%w: not UTF-8", ErrBadFrom)
	}
	if hasGroup(v) {
		// RFC 5322 §3.6.2: From is a mailbox-list; group syntax is
		// for destination fields only.
		return "", fmt.Errorf("%w: group syntax", ErrBadFrom)
	}
	list, err := newAddressParser().ParseList(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadFrom, err)
	}
	if len(list) != 1 {
		return "", fmt.Errorf("%w: %d addresses", ErrBadFrom, len(list))
	}
	addr := list[0].Address
	if strings.HasSuffix(addr, "]") {
		// An address literal has no domain for DKIM or DMARC to use.
		return "", fmt.Errorf("%w: address literal %q", ErrBadFrom, addr)
	}
	return addr, nil
}

// newAddressParser returns a parser for From values. Its word decoder
// accepts any charset by passing the bytes through: the display name is
// never used, and refusing a message for a display name in, say, KOI8-R
// would be wrong.
func newAddressParser() *mail.AddressParser {
	return &mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	}}
}

// unfold removes the line ends of a folded field value (RFC 5322 §2.2.3).
func unfold(v []byte) string {
	s := string(v)
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.ReplaceAll(s, "\n", "")
}

// hasGroup reports whether an address-list value uses group syntax
// ("name: addr, addr;", RFC 5322 §3.4): a colon outside quoted strings,
// comments, angle brackets (where obsolete routes have colons) and domain
// literals. net/mail accepts groups and returns their members, so they have
// to be found first.
func hasGroup(v string) bool {
	depth := 0 // comment nesting
	var quoted, angle, literal bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case (quoted || depth > 0) && c == '\\':
			i++ // quoted-pair
		case quoted:
			quoted = c != '"'
		case depth > 0:
			switch c {
			case '(':
				depth++
			case ')':
				depth--
			}
		case literal:
			literal = c != ']'
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == '[':
			literal = true
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ':' && !angle:
			return true
		}
	}
	return false
}
