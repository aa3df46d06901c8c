package smtpd

import (
	"bytes"
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

	in      []byte // raw bytes read from src
	out     []byte // reused for chunks that need a CR added
	pending []byte // normalized bytes not yet returned: part of in or out
	lineLen int    // octets in the current line so far, CRLF excluded
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

// process checks one chunk and sets n.pending to its normalized form,
// stopping at the first refused octet. It works a line at a time with
// vectorised searches rather than a byte at a time, and a chunk without
// bare LFs (all mail from a conforming client) is passed on as it is,
// without a copy; pending never outlives the chunk, since src is read
// again only once pending is empty.
func (n *lineNormalizer) process(b []byte) {
	out := n.out[:0]
	copied := false // out holds b[:start], normalized
	start := 0
	done := func(end int) {
		if copied {
			out = append(out, b[start:end]...)
			n.pending, n.out = out, out
		} else {
			n.pending = b[:end]
		}
	}
	i := 0
	for i < len(b) {
		if n.cr {
			n.cr = false
			if b[i] != '\n' {
				n.err = reply.BareCR
				done(i)
				return
			}
			n.lineLen = 0
			i++
			continue
		}
		// RFC 5321 §4.5.3.1.6 counts the CRLF in maxLine: a line holds
		// at most maxLine-2 other octets, so the one after those is refused
		// unless it ends the line.
		allowed := n.maxLine - 2 - n.lineLen
		w := b[i:min(len(b), i+max(allowed, 0)+1)]
		s := indexSpecial(w)
		if s < 0 {
			if len(w) > allowed {
				n.err = reply.LineTooLong
				done(i + allowed)
				return
			}
			n.lineLen += len(w)
			i += len(w)
			continue
		}
		n.lineLen += s
		i += s
		switch b[i] {
		case '\r':
			n.cr = true
		case '\n':
			// A bare LF: copy what comes before it, then write CRLF.
			out = append(out, b[start:i]...)
			out = append(out, '\r', '\n')
			copied, start = true, i+1
			n.lineLen = 0
		case 0:
			n.err = reply.NULCharacter
			done(i)
			return
		}
		i++
	}
	done(len(b))
}

// indexSpecial returns the index of the first CR, LF or NUL in b, or -1.
// Three vectorised searches over a short line cost less than one loop
// over its bytes.
func indexSpecial(b []byte) int {
	end := len(b)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		end = i
	}
	if i := bytes.IndexByte(b[:end], '\r'); i >= 0 {
		end = i
	}
	if i := bytes.IndexByte(b[:end], 0); i >= 0 {
		end = i
	}
	if end == len(b) {
		return -1
	}
	return end
}
