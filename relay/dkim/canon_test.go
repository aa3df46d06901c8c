package dkim

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// canonBody runs a body canonicalization over body written in chunks of
// the given sizes (the last size repeats), and returns what it hashed.
func canonBody(c Canonicalization, body string, sizes ...int) string {
	var out bytes.Buffer
	w := newBodyCanonicalizer(c, &out)
	for i := 0; len(body) > 0; i++ {
		n := min(sizes[min(i, len(sizes)-1)], len(body))
		w.Write([]byte(body[:n]))
		body = body[n:]
	}
	w.Close()
	return out.String()
}

func TestBodyCanonicalization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		body          string
		simple, relax string
	}{
		// RFC 6376 §3.4.5, the example.
		{"RFC 6376 example", " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n"},
		{"empty", "", "\r\n", ""},
		{"one empty line", "\r\n", "\r\n", ""},
		{"only empty lines", "\r\n\r\n\r\n", "\r\n", ""},
		{"only white space", " \t \r\n  \r\n", " \t \r\n  \r\n", ""},
		{"no final CRLF", "abc", "abc\r\n", "abc\r\n"},
		{"no final CRLF, trailing space", "abc \t", "abc \t\r\n", "abc\r\n"},
		{"final CRLF", "abc\r\n", "abc\r\n", "abc\r\n"},
		{"trailing empty lines", "abc\r\n\r\n\r\n", "abc\r\n", "abc\r\n"},
		{"inner empty lines kept", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
		{"leading white space becomes one space", "\t\t x\r\n", "\t\t x\r\n", " x\r\n"},
		{"bare LF is a line end", "a\nb\n\n", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"bare LF after white space", "a  \nb", "a  \r\nb\r\n", "a\r\nb\r\n"},
		{"bare CR is content", "a\rb\r\n", "a\rb\r\n", "a\rb\r\n"},
		{"bare CR before CRLF", "a\r\r\n", "a\r\r\n", "a\r\r\n"},
		{"bare CR at the end", "a\r", "a\r\r\n", "a\r\r\n"},
		{"8-bit text untouched", "Grüße  ✓\r\n", "Grüße  ✓\r\n", "Grüße ✓\r\n"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			canon Canonicalization
			want  string
		}{{Simple, tt.simple}, {Relaxed, tt.relax}} {
			if got := canonBody(c.canon, tt.body, 1<<20); got != c.want {
				t.Errorf("%s body %q (%s) = %q, want %q", c.canon, tt.body, tt.name, got, c.want)
			}
			// Streaming: every split into two writes, and one byte at
			// a time, give the same result.
			for i := 0; i <= len(tt.body); i++ {
				if got := canonBody(c.canon, tt.body, i, 1<<20); got != c.want {
					t.Errorf("%s body %q split at %d (%s) = %q, want %q", c.canon, tt.body, i, tt.name, got, c.want)
				}
			}
			if got := canonBody(c.canon, tt.body, 1); got != c.want {
				t.Errorf("%s body %q byte by byte (%s) = %q, want %q", c.canon, tt.body, tt.name, got, c.want)
			}
		}
	}
}

func TestHeaderCanonicalization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		field         string
		simple, relax string
	}{
		// RFC 6376 §3.4.5, the example's two fields.
		{"RFC 6376 example A", "A: X\r\n", "A: X\r\n", "a:X\r\n"},
		{"RFC 6376 example B", "B : Y\t\r\n\tZ  \r\n", "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"},
		{"folded over three lines", "Subject: one\r\n two\r\n\t three\r\n", "Subject: one\r\n two\r\n\t three\r\n", "subject:one two three\r\n"},
		{"empty value", "Subject:\r\n", "Subject:\r\n", "subject:\r\n"},
		{"bare LF line ends", "To: a,\n b\n", "To: a,\r\n b\r\n", "to:a, b\r\n"},
		{"no line end at all", "To: a", "To: a\r\n", "to:a\r\n"},
	}
	for _, tt := range tests {
		fields := splitFields([]byte(tt.field))
		if len(fields) != 1 {
			t.Fatalf("splitFields(%q) = %d fields, want 1", tt.field, len(fields))
		}
		if got := string(appendSimpleHeader(nil, fields[0])); got != tt.simple {
			t.Errorf("simple(%q) (%s) = %q, want %q", tt.field, tt.name, got, tt.simple)
		}
		if got := string(appendRelaxedHeader(nil, fields[0])); got != tt.relax {
			t.Errorf("relaxed(%q) (%s) = %q, want %q", tt.field, tt.name, got, tt.relax)
		}
	}
}

func TestParseCanonicalization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		head, body Canonicalization
		ok         bool
	}{
		{"relaxed/simple", Relaxed, Simple, true},
		{"simple/relaxed", Simple, Relaxed, true},
		{"relaxed", Relaxed, Simple, true}, // RFC 6376 §3.5: body defaults to simple
		{"relaxed/", "", "", false},
		{"loose/simple", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		h, b, err := parseCanonicalization(tt.in)
		if h != tt.head || b != tt.body || (err == nil) != tt.ok {
			t.Errorf("parseCanonicalization(%q) = %q, %q, %v; want %q, %q, ok %v", tt.in, h, b, err, tt.head, tt.body, tt.ok)
		}
	}
}

// referenceBody is RFC 6376 §3.4.3/§3.4.4 written the obvious way, on the
// whole body at once, to check the streaming canonicalizers against.
func referenceBody(c Canonicalization, body string) string {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] == '\n' && (i == 0 || body[i-1] != '\r') {
			b.WriteByte('\r') // a bare LF is a line end
		}
		b.WriteByte(body[i])
	}
	body = b.String()
	if c == Relaxed {
		body = strings.TrimRight(body, " \t") // the last line, when it has no CRLF
		body = regexp.MustCompile(`[ \t]+\r\n`).ReplaceAllString(body, "\r\n")
		body = regexp.MustCompile(`[ \t]+`).ReplaceAllString(body, " ")
	}
	for strings.HasSuffix(body, "\r\n") {
		body = strings.TrimSuffix(body, "\r\n")
	}
	if c == Relaxed && body == "" {
		return ""
	}
	return body + "\r\n"
}

// FuzzBodyCanonicalization checks that the streaming canonicalizers give
// what the whole-body reference gives, however the body is split.
func FuzzBodyCanonicalization(f *testing.F) {
	for _, s := range []string{"", "\r\n", " C \r\nD \t E\r\n\r\n\r\n", "a\rb\n\r\r\n \t", "x\n\n\r"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, body string, split int) {
		split = max(split, 1)
		for _, c := range []Canonicalization{Simple, Relaxed} {
			want := referenceBody(c, body)
			if got := canonBody(c, body, split); got != want {
				t.Errorf("%s body %q in chunks of %d = %q, want %q", c, body, split, got, want)
			}
		}
	})
}
