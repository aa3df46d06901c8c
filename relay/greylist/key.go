package greylist

import (
	"crypto/sha256"
	"net/netip"
	"regexp"
	"strings"
)

// Triplet is what greylisting remembers about one delivery attempt.
type Triplet struct {
	// Client is the SMTP client's IP address.
	Client netip.Addr
	// Sender is the envelope sender (MAIL FROM) as received; "" for the
	// null sender.
	Sender string
	// Recipient is one envelope recipient (RCPT TO).
	Recipient string
}

// key identifies a triplet in memory and in the state file: the first 16
// bytes of the SHA-256 of its normalised parts. Collisions are as likely
// as for a random 128-bit value, and would only let mail pass early.
type key [16]byte

// keyOf normalises t and hashes it. The parts are separated by NUL, which
// no envelope address can contain.
func keyOf(t Triplet) key {
	h := sha256.New()
	h.Write([]byte(clientNet(t.Client)))
	h.Write([]byte{0})
	h.Write([]byte(normalizeSender(t.Sender)))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(t.Recipient)))
	var k key
	copy(k[:], h.Sum(nil))
	return k
}

// clientNet is the network a client is greylisted by: the /24 of an IPv4
// address (an IPv4-mapped IPv6 address counts as IPv4), the /64 of an IPv6
// address.
func clientNet(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.WithZone("").Prefix(bits)
	return p.String()
}

// Sender normalisation patterns, applied to the lower-cased local part.
var (
	// srs0 is an SRS0 address (SRS0=hash=tt=domain=user, "=" or "+" or
	// "-" after SRS0); the original sender is user@domain.
	srs0 = regexp.MustCompile(`^srs0[=+-][^=]*=[^=]*=([^=]+)=(.+)$`)
	// batv is a BATV tag (prvs=tag=user), which changes per message.
	batv = regexp.MustCompile(`^(?:prvs|msprvs1|btv1)=[^=]+=(.+)$`)
	// number is a number standing alone as a word, as in VERP bounce
	// addresses; postgrey replaces each with "#".
	number = regexp.MustCompile(`\b\d+\b`)
)

// normalizeSender makes the per-message variants of one sender one
// string; see the package documentation.
func normalizeSender(s string) string {
	s = strings.ToLower(s)
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	user, domain := s[:at], s[at+1:]
	if m := srs0.FindStringSubmatch(user); m != nil {
		user, domain = m[2], m[1]
	}
	if m := batv.FindStringSubmatch(user); m != nil {
		user = m[1]
	}
	if i := strings.IndexByte(user, '+'); i > 0 {
		user = user[:i]
	}
	user = number.ReplaceAllString(user, "#")
	return user + "@" + domain
}
