package inbound

import (
	"context"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
	"golang.org/x/net/idna"

	"smarthost/relay/resolve"
)

// spfOutcome is the result of the SPF check of one message.
type spfOutcome struct {
	result spf.Result
	// identity is "mailfrom" or "helo" (RFC 7208 §9.1's identity key).
	identity string
	// sender is the address checked: MAIL FROM, or postmaster@<HELO> for
	// the null sender (RFC 7208 §2.4).
	sender string
	// domain is the domain checked, lower-case A-labels; "" when there
	// was none to check. DMARC aligns it with the From domain.
	domain string
	// reason is the library's explanation, for the log only: it may name
	// DNS servers and must not go into a header.
	reason string
}

// checkSPF runs check_host() (RFC 7208 §4) for the envelope.
//
// The identity is the MAIL FROM domain; for the null sender it is the HELO
// name, with postmaster as local part (RFC 7208 §2.4). The HELO identity
// is not checked separately for other senders: RFC 7208 §2.3 only
// RECOMMENDS it, and DMARC does not use it. A domain that is not a valid
// multi-label name gives "none" without a query (RFC 7208 §4.3), which is
// also what a HELO of an address literal gives. Lookup limits (10
// DNS-querying terms, 2 void lookups, RFC 7208 §4.6.4) are the library's.
func checkSPF(ctx context.Context, r resolve.Resolver, env Envelope) spfOutcome {
	out := spfOutcome{identity: "mailfrom", sender: env.MailFrom}
	local, domain, _ := cutLast(env.MailFrom, "@")
	if env.MailFrom == "" {
		out.identity = "helo"
		local, domain = "postmaster", env.Helo
		out.sender = "postmaster@" + env.Helo
	}
	if local == "" {
		// RFC 7208 §4.3: a missing local part is "postmaster".
		local = "postmaster"
	}
	ascii, ok := spfDomain(domain)
	if !ok {
		out.result = spf.None
		out.reason = "no valid domain to check"
		return out
	}
	out.domain = ascii
	// The library looks up the domain as given: give it A-labels (an
	// SMTPUTF8 sender may use U-labels, which no resolver answers).
	helo := env.Helo
	if h, ok := spfDomain(helo); ok {
		helo = h
	}
	ip := env.ClientIP.Unmap()
	res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), helo, local+"@"+ascii,
		spf.WithContext(ctx), spf.WithResolver(resolve.NetStyle{Resolver: r}))
	out.result = res
	if err != nil {
		out.reason = err.Error()
	}
	return out
}

// cutLast splits s around the last sep: a quoted local part may hold "@".
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// spfDomain returns domain lower-cased and as A-labels (DNS names are
// ASCII; an SMTPUTF8 sender may give U-labels), and whether it is a
// domain SPF can check: at least two labels, RFC 7208 §4.3.
func spfDomain(domain string) (string, bool) {
	d, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || !strings.Contains(d, ".") || strings.HasPrefix(d, "[") {
		return "", false
	}
	return strings.ToLower(d), true
}

// lookupTXT returns a lookup function for go-msgauth (DKIM keys), which
// classifies errors the same way as the spf library: see resolve.NetStyle.
func lookupTXT(ctx context.Context, r resolve.Resolver) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txt, err := r.LookupTXT(ctx, name)
		return txt, resolve.DNSError(err, name)
	}
}

// receivedSPF formats the Received-SPF field (RFC 7208 §9.1): the result,
// a comment in the words of the RFC's examples, and the key-value pairs
// client-ip, envelope-from, helo, receiver and identity. A value that is
// not a dot-atom (an IPv6 address, an address with "@") is a quoted
// string, as the ABNF requires.
func receivedSPF(o spfOutcome, env Envelope, receiver string) []byte {
	ip := env.ClientIP.Unmap().String()
	tokens := []string{string(o.result)}
	tokens = append(tokens, strings.Fields("("+receiver+": "+spfComment(o, ip)+")")...)
	from := env.MailFrom
	if from == "" {
		from = "<>"
	}
	tokens = append(tokens,
		kv("client-ip", ip)+";",
		kv("envelope-from", from)+";",
		kv("helo", env.Helo)+";",
		kv("receiver", receiver)+";",
		kv("identity", o.identity))
	return foldField("Received-SPF", tokens)
}

// spfComment explains the result as RFC 7208 §9.1's examples do (and
// pyspf, behind policyd-spf, words them).
func spfComment(o spfOutcome, ip string) string {
	who := escapeComment(o.sender)
	switch o.result {
	case spf.Pass:
		return "domain of " + who + " designates " + ip + " as permitted sender"
	case spf.Fail:
		return "domain of " + who + " does not designate " + ip + " as permitted sender"
	case spf.SoftFail:
		return "domain of transitioning " + who + " does not designate " + ip + " as permitted sender"
	case spf.Neutral:
		return ip + " is neither permitted nor denied by domain of " + who
	case spf.TempError:
		return "temporary error in processing during lookup of " + who
	case spf.PermError:
		return "permanent error in processing domain of " + who
	}
	return "domain of " + who + " does not designate permitted sender hosts"
}

// escapeComment makes s safe inside a comment: parentheses and backslash
// become quoted-pairs (RFC 5322 §3.2.2), control characters are dropped.
func escapeComment(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '(' || c == ')' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < ' ' || c == 0x7f:
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// kv formats one key-value pair of Received-SPF: key=dot-atom, or
// key="quoted string" when the value is not a dot-atom.
func kv(key, value string) string {
	if isDotAtom(value) {
		return key + "=" + value
	}
	var b strings.Builder
	b.WriteString(key + `="`)
	for _, c := range value {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < ' ' || c == 0x7f:
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isDotAtom reports whether s is a dot-atom (RFC 5322 §3.2.3) of ASCII
// atext.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' ||
			strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			return false
		}
	}
	return true
}
