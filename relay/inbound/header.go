package inbound

import (
	"bytes"
	"strings"
)

// field is one header field exactly as received: name as written (without
// the white space obsolete syntax allows before the colon, RFC 5322 §4.5)
// and the raw bytes, continuation lines and line ends included. raw points
// into the header it was split from.
type field struct {
	name string
	raw  []byte
}

// value returns everything after the field's colon, raw.
func (f field) value() []byte {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	return v
}

// is reports whether the field has the given name; field names are
// case-insensitive (RFC 5322 §1.2.2).
func (f field) is(name string) bool { return strings.EqualFold(f.name, name) }

// splitHeader splits a header section (as relay/dkim.ReadHeader returns it)
// into its fields and the rest: the empty line that ends the section, or
// nothing when the message has no body. A line starting with space or tab
// continues the field before it (RFC 5322 §2.2.3). Concatenating the raw
// fields and rest gives back header byte for byte.
func splitHeader(header []byte) (fields []field, rest []byte) {
	for len(header) > 0 {
		n := bytes.IndexByte(header, '\n') + 1
		if n == 0 {
			n = len(header)
		}
		line := header[:n]
		if isEmptyLine(line) {
			return fields, header
		}
		header = header[n:]
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			last := &fields[len(fields)-1]
			last.raw = last.raw[:len(last.raw)+len(line)] // line follows raw
			continue
		}
		var name string
		if colon := bytes.IndexByte(line, ':'); colon >= 0 {
			name = strings.TrimRight(string(line[:colon]), " \t")
		}
		fields = append(fields, field{name: name, raw: line})
	}
	return fields, nil
}

func isEmptyLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// unfold removes the line ends of a folded field value (RFC 5322 §2.2.3).
func unfold(v []byte) string {
	s := strings.ReplaceAll(string(v), "\r\n", "")
	return strings.ReplaceAll(s, "\n", "")
}

// removeForged returns header without the Authentication-Results fields
// whose authserv-id is hostname, and how many it removed. Everything else
// is kept byte for byte, in order.
//
// RFC 8601 §5: a border MTA MUST remove (or rename) Authentication-Results
// fields that claim its own authserv-id, or the home server, which trusts
// our results, would trust a sender's forgery. Fields of other
// authserv-ids are kept: they are someone else's claims, and harmless to a
// reader that only trusts ours.
func removeForged(header []byte, hostname string) ([]byte, int) {
	fields, rest := splitHeader(header)
	removed := 0
	out := make([]byte, 0, len(header))
	for _, f := range fields {
		if f.is("Authentication-Results") && sameHost(authservID(f.value()), hostname) {
			removed++
			continue
		}
		out = append(out, f.raw...)
	}
	if removed == 0 {
		return header, 0
	}
	return append(out, rest...), removed
}

// sameHost compares two host names as DNS does: ASCII case-insensitively,
// ignoring a trailing dot.
func sameHost(a, b string) bool {
	return a != "" && strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// authservID returns the authserv-id of an Authentication-Results value
// (RFC 8601 §2.2): the first token or quoted-string after any CFWS.
// Comments are skipped, nested and with quoted-pairs as RFC 5322 §3.2.2
// allows, so "(forged) mx.example.org; spf=pass" is found to claim
// mx.example.org; go-msgauth's authres.Parse does not skip comments. It
// returns "" when there is no identifier.
func authservID(v []byte) string {
	s := unfold(v)
	i := skipCFWS(s, 0)
	if i >= len(s) {
		return ""
	}
	if s[i] == '"' {
		var b strings.Builder
		for i++; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	j := i
	for j < len(s) && !strings.ContainsRune(" \t;()\"", rune(s[j])) {
		j++
	}
	return s[i:j]
}

// skipCFWS returns the index of the first byte at or after i that is
// neither white space nor inside a comment.
func skipCFWS(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0 && c == '\\':
			i++ // quoted-pair
		case c == '(':
			depth++
		case depth > 0 && c == ')':
			depth--
		case depth > 0, c == ' ', c == '\t':
		default:
			return i
		}
	}
	return i
}

// maxLineLength is the longest line we write: RFC 5322 §2.1.1's SHOULD,
// CRLF excluded.
const maxLineLength = 78

// foldField returns "name: token token …" CRLF-terminated, folded before a
// token wherever the line would pass 78 characters. A fold is CRLF and one
// space, which unfolds (RFC 5322 §2.2.3) to the single space it replaces,
// so callers may only split at places where the syntax allows white space;
// a token longer than a line stays whole.
func foldField(name string, tokens []string) []byte {
	b := []byte(name + ":")
	line := len(b)
	for _, t := range tokens {
		if line+1+len(t) > maxLineLength && line > len(name)+1 {
			b = append(b, "\r\n"...)
			line = 0
		}
		b = append(b, ' ')
		b = append(b, t...)
		line += 1 + len(t)
	}
	return append(b, "\r\n"...)
}

// splitTokens splits s at spaces outside double quotes (a backslash in
// quotes escapes the next byte) and joins a token that is only ";" to the
// one before it: authres.Format writes "spf=none ;" for a result without
// properties.
func splitTokens(s string) []string {
	var tokens []string
	start, quoted := 0, false
	flush := func(end int) {
		t := s[start:end]
		switch {
		case t == "":
		case t == ";" && len(tokens) > 0:
			tokens[len(tokens)-1] += t
		default:
			tokens = append(tokens, t)
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			flush(i)
			start = i + 1
		}
	}
	flush(len(s))
	return tokens
}
