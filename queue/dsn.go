package queue

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// bounce queues one RFC 3464 DSN to rec.From reporting the failed
// recipients, through the same durable path as any message (Create, Write,
// Commit), and returns its queue ID. Like Postfix's bounce daemon it
// reports every recipient that failed in one attempt in one message, not
// one message per recipient. m.mu of rec's message is held.
func (q *Queue) bounce(rec *record, failed []*Recipient, now time.Time) (ID, error) {
	header, err := q.originalHeader(rec)
	if err != nil {
		// Report the failure without the headers rather than not at all.
		header = nil
	}
	d, err := q.Create()
	if err != nil {
		return "", err
	}
	p := dsnParams{
		Hostname: q.opts.Hostname,
		DSNID:    d.ID(),
		OrigID:   rec.ID,
		Sender:   rec.From,
		Arrival:  rec.Arrival,
		Now:      now,
		Header:   header,
	}
	for _, r := range failed {
		p.Recipients = append(p.Recipients, dsnRecipient{Address: r.Address, Status: r.Status,
			RemoteMTA: r.RemoteMTA, Reply: r.Reply, Expired: r.Expired})
	}
	msg := buildDSN(p)
	if _, err := d.Write(msg); err != nil {
		d.Abort()
		return "", err
	}
	var sig []byte
	if q.opts.SignDSN != nil {
		if sig, err = q.opts.SignDSN(msg); err != nil {
			// No silent fallback to an unsigned DSN (STYLE §4): retried
			// with the next attempt.
			d.Abort()
			return "", fmt.Errorf("queue: sign DSN for %s: %w", rec.ID, err)
		}
	}
	env := Envelope{
		From:       "", // RFC 3464 §2 / RFC 5321 §4.5.5: a DSN has the null sender
		Recipients: []string{rec.From},
		UTF8:       !isASCII(rec.From),
		EightBit:   !isASCII(string(msg)),
		Origin:     Origin{Role: "local"},
	}
	if err := d.Commit(env, sig); err != nil {
		return "", err
	}
	return d.ID(), nil
}

// maxDSNHeader bounds the original header copied into a DSN and shown by
// Show; longer headers are cut at a line boundary.
const maxDSNHeader = 256 << 10

// originalHeader returns the message's header section as delivered: the
// prepended header, then the data file up to the empty line.
func (q *Queue) originalHeader(rec *record) ([]byte, error) {
	header := rec.Header
	if rec.cold {
		var err error
		if header, _, err = q.spool.readCold(rec.ID, rec.headerLen); err != nil {
			return nil, err
		}
	}
	r, err := q.openData(rec.ID, header)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readHeader(r, maxDSNHeader)
}

// readHeader reads lines from r up to (not including) the empty line that
// ends the header section, or up to limit bytes, ending at a line boundary.
func readHeader(r io.Reader, limit int) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, int64(limit)))
	var out bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				return out.Bytes(), nil
			}
			out.Write(line)
		}
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// dsnRecipient is one failed recipient as reported in a DSN.
type dsnRecipient struct {
	Address   string
	Status    string // RFC 3463
	RemoteMTA string
	Reply     string
	Expired   bool
}

// dsnParams is everything buildDSN needs; with a fixed Now the output is
// fixed, which the golden test relies on.
type dsnParams struct {
	Hostname   string
	DSNID      ID // the DSN's own queue ID
	OrigID     ID // the failed message's queue ID
	Sender     string
	Arrival    time.Time
	Now        time.Time
	Recipients []dsnRecipient
	Header     []byte // the original header section
}

// buildDSN returns an RFC 3464 delivery status notification: a
// multipart/report (RFC 6522) with a human-readable part, a
// message/delivery-status part and the original header as
// text/rfc822-headers. Its layout follows Postfix's bounce(8) messages.
func buildDSN(p dsnParams) []byte {
	// Postfix's boundary is queue ID, time and host name; the queue ID is
	// fresh, so the boundary cannot occur in the copied header.
	boundary := fmt.Sprintf("%s.%d/%s", p.DSNID, p.Now.Unix(), p.Hostname)
	var b bytes.Buffer
	hdr := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	hdr("From", "Mail Delivery System <MAILER-DAEMON@"+p.Hostname+">")
	hdr("To", "<"+p.Sender+">")
	hdr("Subject", "Undelivered Mail Returned to Sender")
	hdr("Date", p.Now.Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<%s.%s@%s>", p.Now.UTC().Format("20060102150405"), p.DSNID, p.Hostname))
	// RFC 3834 §5: a DSN is an automatic response; Postfix marks it so too.
	hdr("Auto-Submitted", "auto-replied")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/report; report-type=delivery-status;`+"\r\n\t"+`boundary="`+boundary+`"`)
	b.WriteString("\r\nThis is a MIME-encapsulated message.\r\n\r\n")

	text := dsnText(p)
	fmt.Fprintf(&b, "--%s\r\n", boundary)
	hdr("Content-Description", "Notification")
	hdr("Content-Type", "text/plain; charset="+charset(text))
	if !isASCII(text) {
		hdr("Content-Transfer-Encoding", "8bit")
	}
	b.WriteString("\r\n" + text + "\r\n")

	// RFC 6533: addresses that are not ASCII need the utf-8 address type
	// and message/global-delivery-status.
	statusType, addrType := "message/delivery-status", "rfc822"
	if !isASCII(p.Sender) || !allASCII(p.Recipients) {
		statusType, addrType = "message/global-delivery-status", "utf-8"
	}
	fmt.Fprintf(&b, "--%s\r\n", boundary)
	hdr("Content-Description", "Delivery report")
	hdr("Content-Type", statusType)
	b.WriteString("\r\n")
	// RFC 3464 §2.2: per-message fields.
	hdr("Reporting-MTA", "dns; "+p.Hostname)
	hdr("X-Smarthost-Queue-ID", string(p.OrigID)) // as Postfix's X-Postfix-Queue-ID
	hdr("X-Smarthost-Sender", addrType+"; "+p.Sender)
	hdr("Arrival-Date", p.Arrival.Format(time.RFC1123Z))
	// RFC 3464 §2.3: per-recipient fields, each group after an empty line.
	for _, r := range p.Recipients {
		b.WriteString("\r\n")
		hdr("Final-Recipient", addrType+"; "+r.Address)
		hdr("Action", "failed")
		hdr("Status", r.Status)
		if r.RemoteMTA != "" {
			hdr("Remote-MTA", "dns; "+oneLine(r.RemoteMTA))
		}
		if r.Reply != "" {
			hdr("Diagnostic-Code", diagnosticCode(r.Reply))
		}
		hdr("Last-Attempt-Date", p.Now.Format(time.RFC1123Z))
	}
	b.WriteString("\r\n")

	fmt.Fprintf(&b, "--%s\r\n", boundary)
	hdr("Content-Description", "Undelivered Message Headers")
	hdr("Content-Type", "text/rfc822-headers")
	if !isASCII(string(p.Header)) {
		hdr("Content-Transfer-Encoding", "8bit")
	}
	b.WriteString("\r\n")
	b.Write(crlf(p.Header))
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}

// dsnText is the human-readable part.
func dsnText(p dsnParams) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at host %s.\r\n\r\n", p.Hostname)
	b.WriteString("Your message could not be delivered to one or more recipients.\r\n")
	b.WriteString("The reasons are below; the headers of your message are attached.\r\n\r\n")
	for _, r := range p.Recipients {
		reason := oneLine(r.Reply)
		if r.Expired {
			reason = fmt.Sprintf("delivery time expired: the message stayed in the queue for %s; last error: %s",
				humanDuration(p.Now.Sub(p.Arrival)), reason)
		} else if r.RemoteMTA != "" {
			reason = fmt.Sprintf("host %s said: %s", oneLine(r.RemoteMTA), reason)
		}
		b.WriteString(wrap(fmt.Sprintf("<%s>: %s", r.Address, reason), 76))
	}
	return b.String()
}

// wrap breaks s at spaces into CRLF-terminated lines of about width
// columns, continuation lines indented, as Postfix formats bounce text
// (RFC 5322 §2.1.1 asks for lines of at most 78 characters).
func wrap(s string, width int) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		switch {
		case i == 0:
		case line+1+len(word) > width:
			b.WriteString("\r\n    ")
			line = 4
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}

// humanDuration formats a queue lifetime the way people say it.
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
}

// diagnosticCode formats RFC 3464 §2.3.6: "smtp; <reply>" for an SMTP
// reply, and for a local failure (no reply) "X-Smarthost; <text>", as
// Postfix writes "X-Postfix; ...".
func diagnosticCode(reply string) string {
	reply = oneLine(reply)
	if replyCode(reply) != 0 {
		return "smtp; " + reply
	}
	return "X-Smarthost; " + reply
}

// maxFieldText bounds free text copied into a DSN field, well under the
// 998-octet line limit of RFC 5322 §2.1.1.
const maxFieldText = 900

// oneLine makes s safe for one header line: control characters become
// spaces and it is cut to maxFieldText bytes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxFieldText {
		s = s[:maxFieldText]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// crlf returns b with every line CRLF-terminated, including the last.
func crlf(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		out.Write(bytes.TrimRight(line, "\r\n"))
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(rs []dsnRecipient) bool {
	for _, r := range rs {
		if !isASCII(r.Address) {
			return false
		}
	}
	return true
}

func charset(s string) string {
	if isASCII(s) {
		return "us-ascii"
	}
	return "utf-8"
}
