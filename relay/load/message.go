package load

import (
	"fmt"
	"strings"
	"time"
)

// bodyLine is the line the body is made of: 76 octets of text and CRLF,
// the length of ordinary wrapped text (RFC 5322 §2.1.1 asks for at most
// 78). It never starts with a dot, so the body needs no dot-stuffing.
const bodyLine = "The quick brown fox jumps over the lazy dog; 0123456789 ABCDEFGHIJKLMNOPQRSTU\r\n"

// message builds the messages of one run: a small header that differs per
// message (Message-ID) and one body shared by all of them, so that a run
// of 10 MiB messages holds one body in memory, not one per session.
type message struct {
	from, to, helo string
	date           string
	body           []byte // CRLF lines; the header plus body are size octets
}

// newMessage prepares messages of size octets in total (header and body,
// without the final dot); a size smaller than the header gives a message
// with an empty body line.
func newMessage(from, to, helo string, size int, now time.Time) *message {
	m := &message{from: from, to: to, helo: helo, date: now.UTC().Format(time.RFC1123Z)}
	n := max(size-len(m.header(0)), 2)
	var b strings.Builder
	b.Grow(n)
	for n > 0 {
		line := len(bodyLine)
		switch {
		case n < line:
			line = n // the last line: n-2 octets of text, then CRLF
		case n < line+2:
			line = n / 2 // a full line would leave less than a CRLF
		}
		b.WriteString(bodyLine[:line-2])
		b.WriteString("\r\n")
		n -= line
	}
	m.body = []byte(b.String())
	return m
}

// header returns the header section of message number seq, with the empty
// line that ends it. Its length does not depend on seq below 10^12.
func (m *message) header(seq int64) []byte {
	return fmt.Appendf(nil, "From: <%s>\r\nTo: <%s>\r\nSubject: smtpload test message\r\nDate: %s\r\n"+
		"Message-ID: <%012d.smtpload@%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
		m.from, m.to, m.date, seq, m.helo)
}
