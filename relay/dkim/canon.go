package dkim

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Canonicalization is one of the two algorithms of RFC 6376 §3.4, for the
// header or the body.
type Canonicalization string

const (
	// Simple tolerates almost no change (RFC 6376 §3.4.1, §3.4.3).
	Simple Canonicalization = "simple"
	// Relaxed tolerates changes of white space and header folding
	// (RFC 6376 §3.4.2, §3.4.4).
	Relaxed Canonicalization = "relaxed"
)

// Valid reports whether c is a known algorithm.
func (c Canonicalization) Valid() bool { return c == Simple || c == Relaxed }

// parseCanonicalization parses the c= form "header/body", as the
// configuration writes it. A lone "header" means "header/simple"
// (RFC 6376 §3.5, c= tag).
func parseCanonicalization(s string) (header, body Canonicalization, err error) {
	h, b, ok := strings.Cut(s, "/")
	if !ok {
		b = string(Simple)
	}
	header, body = Canonicalization(h), Canonicalization(b)
	if !header.Valid() || !body.Valid() {
		return "", "", fmt.Errorf("dkim: canonicalization %q is not header/body, each relaxed or simple; use relaxed/simple", s)
	}
	return header, body, nil
}

// bodyCanonicalizer is a streaming body canonicalization: the body is
// written to it in chunks of any size, split anywhere, and Close writes
// what the end of the body decides. It writes the canonical body to an
// io.Writer that never fails (a hash).
type bodyCanonicalizer interface {
	io.Writer
	Close()
}

func newBodyCanonicalizer(c Canonicalization, w io.Writer) bodyCanonicalizer {
	if c == Relaxed {
		return &relaxedBody{w: w}
	}
	return &simpleBody{w: w, crlf: [2]byte{'\r', '\n'}}
}

const crlf = "\r\n"

// simpleBody is "simple" body canonicalization (RFC 6376 §3.4.3): the body
// unchanged, except that empty lines at its end are removed and it ends
// with exactly one CRLF (an empty body becomes a single CRLF). A bare LF
// counts as a line end and is hashed as CRLF, because that is how the
// message goes out on the wire.
//
// Line ends are held back while only line ends have been seen, because
// they may turn out to be trailing empty lines.
type simpleBody struct {
	w       io.Writer
	crlf    [2]byte // "\r\n", to write without allocating
	pending int     // CRLFs held back
	cr      bool    // the last chunk ended with CR, maybe half of a CRLF
}

func (c *simpleBody) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	if c.cr {
		c.cr = false
		if p[0] == '\n' {
			c.pending++
			p = p[1:]
		} else {
			c.content([]byte{'\r'}) // a bare CR is content
		}
	}
	// Split p into content, which ends in neither CR nor LF and goes out
	// now, and a tail of line ends, which is held back.
	k := len(p)
	for k > 0 && (p[k-1] == '\r' || p[k-1] == '\n') {
		k--
	}
	if k > 0 {
		c.content(p[:k])
	}
	tail := p[k:]
	for i := 0; i < len(tail); i++ {
		switch {
		case tail[i] == '\n':
			c.pending++ // a bare LF, or see below
		case i+1 == len(tail):
			c.cr = true
		case tail[i+1] == '\n':
			c.pending++
			i++
		default:
			c.content([]byte{'\r'})
		}
	}
	return n, nil
}

// content writes the held-back line ends and then b, which ends in neither
// CR nor LF, turning each bare LF in b into CRLF. The byte before b is
// never a CR still to be paired: Write has dealt with that.
func (c *simpleBody) content(b []byte) {
	for ; c.pending > 0; c.pending-- {
		c.w.Write(c.crlf[:])
	}
	start := 0
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			c.w.Write(b[start:i])
			c.w.Write(c.crlf[:])
			start = i + 1
		}
	}
	c.w.Write(b[start:])
}

func (c *simpleBody) Close() {
	if c.cr {
		c.content([]byte{'\r'})
	}
	c.w.Write(c.crlf[:])
}

// relaxedBody is "relaxed" body canonicalization (RFC 6376 §3.4.4): white
// space at the end of each line removed, other runs of space and tab turned
// into one space, empty lines at the end removed, and a final CRLF added to
// a body that does not end with one. An empty body stays empty (RFC 6376
// erratum 1384; what dkimpy and go-msgauth do). Bare LF is a line end, as
// for [simpleBody].
//
// White space at the end of a last line without CRLF is removed too: SMTP
// adds the CRLF before the final dot (RFC 5321 §4.1.1.4), so that is what
// every verifier sees.
type relaxedBody struct {
	w       io.Writer
	buf     []byte
	pending int  // CRLFs held back
	wsp     bool // white space seen and not yet written
	cr      bool // the last chunk ended with CR
	written bool // anything but line ends has been written
}

func (c *relaxedBody) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	out := c.buf[:0]
	if c.cr {
		c.cr = false
		if p[0] == '\n' {
			c.lineEnd()
			p = p[1:]
		} else {
			out = c.content(out, []byte{'\r'})
		}
	}
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j] != ' ' && p[j] != '\t' && p[j] != '\r' && p[j] != '\n' {
			j++
		}
		if j > i {
			out = c.content(out, p[i:j])
			i = j
			continue
		}
		switch {
		case p[i] == ' ' || p[i] == '\t':
			c.wsp = true
		case p[i] == '\n':
			c.lineEnd()
		case i+1 == len(p):
			c.cr = true
		case p[i+1] == '\n':
			c.lineEnd()
			i++
		default:
			out = c.content(out, p[i:i+1]) // a bare CR is content
		}
		i++
	}
	c.w.Write(out)
	c.buf = out
	return n, nil
}

// lineEnd drops the white space before it and holds the line end back.
func (c *relaxedBody) lineEnd() {
	c.wsp = false
	c.pending++
}

// content appends the held-back line ends and white space, then b.
func (c *relaxedBody) content(out, b []byte) []byte {
	for ; c.pending > 0; c.pending-- {
		out = append(out, crlf...)
	}
	if c.wsp {
		out = append(out, ' ')
		c.wsp = false
	}
	c.written = true
	return append(out, b...)
}

func (c *relaxedBody) Close() {
	var out []byte
	if c.cr {
		out = c.content(out, []byte{'\r'})
	}
	if c.written {
		out = append(out, crlf...)
	}
	c.w.Write(out)
}
