package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrHeaderTooBig is returned by [ReadHeader] when the header section is
// longer than the limit it was given.
var ErrHeaderTooBig = errors.New("dkim: header section exceeds limit")

// ReadHeader reads the header section of a message from r: every line up to
// and including the empty line that ends it (RFC 5322 §2.1). What remains in
// r is the body, to be written to a [Signer]. A message without an empty
// line is all header; ReadHeader then returns everything up to EOF. It
// returns [ErrHeaderTooBig] as soon as more than max bytes have been read,
// so a client cannot make it buffer more than that.
func ReadHeader(r *bufio.Reader, max int) ([]byte, error) {
	var h []byte
	lineStart := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if len(h)+len(chunk) > max {
			return nil, ErrHeaderTooBig
		}
		h = append(h, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue // the line goes on
		case errors.Is(err, io.EOF):
			return h, nil
		case err != nil:
			return nil, fmt.Errorf("dkim: read header: %w", err)
		}
		if line := h[lineStart:]; len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return h, nil
		}
		lineStart = len(h)
	}
}

// field is one header field as it appears in the header section.
type field struct {
	// name is the field name as written, without the white space that
	// obsolete syntax allows before the colon (RFC 5322 §4.5). It is ""
	// for a line that is not a field at all.
	name string
	// raw is the whole field, continuation lines and line ends included.
	// Line ends are CRLF or, in mail that has not been through SMTP, LF;
	// the canonicalizations treat both as CRLF, as the message will be
	// sent.
	raw []byte
}

// value returns the field's raw value: everything after the colon.
func (f field) value() []byte {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	return v
}

// splitFields splits a header section into its fields, stopping at the
// empty line that ends it. A continuation line (one starting with space or
// tab, RFC 5322 §2.2.3) belongs to the field before it. The fields' raw
// bytes point into header.
func splitFields(header []byte) []field {
	var fields []field
	for len(header) > 0 {
		n := bytes.IndexByte(header, '\n') + 1
		if n == 0 {
			n = len(header)
		}
		line := header[:n]
		header = header[n:]
		if isEmptyLine(line) {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			last := &fields[len(fields)-1]
			last.raw = last.raw[:len(last.raw)+len(line)] // line follows raw in header
			continue
		}
		var name string
		if colon := bytes.IndexByte(line, ':'); colon >= 0 {
			name = strings.TrimRight(string(line[:colon]), " \t")
		}
		fields = append(fields, field{name: name, raw: line})
	}
	return fields
}

func isEmptyLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// appendSimpleHeader appends f canonicalized with "simple" (RFC 6376
// §3.4.1): unchanged, except that a bare LF line end becomes CRLF, as it
// will be on the wire.
func appendSimpleHeader(dst []byte, f field) []byte {
	raw := f.raw
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			dst = append(dst, raw...)
			return append(dst, '\r', '\n') // a last field without a line end
		}
		if i > 0 && raw[i-1] == '\r' {
			dst = append(dst, raw[:i+1]...)
		} else {
			dst = append(dst, raw[:i]...)
			dst = append(dst, '\r', '\n')
		}
		raw = raw[i+1:]
	}
	return dst
}

// appendRelaxedHeader appends f canonicalized with "relaxed" (RFC 6376
// §3.4.2): name lower-cased, white space around the colon removed, the value
// unfolded (CRLF removed), runs of space and tab turned into one space, and
// white space at the ends of the value removed.
func appendRelaxedHeader(dst []byte, f field) []byte {
	dst = append(dst, strings.ToLower(strings.TrimSpace(f.name))...)
	dst = append(dst, ':')
	return appendRelaxedValue(dst, f.value())
}

// appendRelaxedValue does the value part of [appendRelaxedHeader] and ends
// it with CRLF.
func appendRelaxedValue(dst, v []byte) []byte {
	wsp, started := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\n' || c == '\r' && i+1 < len(v) && v[i+1] == '\n':
			// Unfolding removes the line end only; the white space
			// after it stays and is compressed below.
		case c == ' ' || c == '\t':
			wsp = true
		default:
			if wsp && started {
				dst = append(dst, ' ')
			}
			wsp, started = false, true
			dst = append(dst, c)
		}
	}
	return append(dst, '\r', '\n')
}
