package smtpd

import (
	"io"

	"smarthost/relay/reply"
)

// lineNormalizer rewrites message content as it streams from the client so
// that everything after it sees only CRLF line endings:
//
//   - a bare LF becomes CRLF, as Postfix 3.9 does with
//     smtpd_forbid_bare_newline = normalize;
//   - a bare CR (not followed by LF) is refused with [reply.BareCR]: it
//     has no safe reading, and some MTAs treat it as a line end, which is
//     how SMTP smuggling (CVE-2023-51764 and friends) splits one message
//     into two;
//   - a NUL octet is refused with [reply.NULCharacter] (RFC 6152 §3: not
//     even 8BITMIME allows it);
//   - a line longer than maxLine octets (CRLF included) is refused with
//     [reply.LineTooLong]. go-smtp bounds DATA lines itself but turns the
//     bound off for BDAT chunks, so we enforce it here for both.
//
// The end of DATA is found by go-smtp before this reader sees the bytes,
// and only at <CR><LF>.<CR><LF>; this reader never ends a message early, so
// <LF>.<CR><LF> and <CR><LF>.<LF> stay message content (a line holding one
// dot), which the delivery client dot-stuffs again on the way out.
type lineNormalizer struct {
	src     io.Reader
	maxLine int

	in      []byte // raw bytes read from src, not yet processed
	pending []byte // normalized bytes not yet returned
	lineLen int    // octets in the current line so far
	cr      bool   // the last processed byte was a CR whose LF is awaited
	err     error  // sticky error
}

func newLineNormalizer(src io.Reader, maxLine int) *lineNormalizer {
	return &lineNormalizer{src: src, maxLine: maxLine, in: make([]byte, 32<<10)}
}

func (n *lineNormalizer) Read(p []byte) (int, error) {
	for len(n.pending) == 0 {
		if n.err != nil {
			return 0, n.err
		}
		m, err := n.src.Read(n.in)
		if m > 0 {
			n.process(n.in[:m])
		}
		if err != nil && n.err == nil {
			if err == io.EOF && n.cr {
				// A CR as the very last octet is bare too.
				n.err = reply.BareCR
			} else {
				n.err = err
			}
		}
	}
	c := copy(p, n.pending)
	n.pending = n.pending[c:]
	return c, nil
}

// process normalizes one chunk into n.pending, stopping at the first
// refused octet.
func (n *lineNormalizer) process(b []byte) {
	out := n.pending[:0:0]
	if cap(out) < len(b)+len(b)/8+2 {
		out = make([]byte, 0, len(b)+len(b)/8+2)
	}
	start := 0 // start of the run of ordinary bytes not yet copied
	for i := 0; i < len(b); i++ {
		c := b[i]
		if n.cr {
			n.cr = false
			if c != '\n' {
				n.fail(reply.BareCR, &out, b, start, i)
				return
			}
			n.lineLen = 0
			continue
		}
		switch c {
		case '\r':
			n.cr = true
		case '\n':
			// A bare LF: copy the run before it, then write CRLF.
			out = append(out, b[start:i]...)
			out = append(out, '\r', '\n')
			start = i + 1
			n.lineLen = 0
		case 0:
			n.fail(reply.NULCharacter, &out, b, start, i)
			return
		default:
			n.lineLen++
		}
		if n.lineLen+2 > n.maxLine {
			n.fail(reply.LineTooLong, &out, b, start, i)
			return
		}
	}
	out = append(out, b[start:]...)
	n.pending = out
}

func (n *lineNormalizer) fail(r reply.Reply, out *[]byte, b []byte, start, i int) {
	*out = append(*out, b[start:i]...)
	n.pending = *out
	n.err = r
}
