package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	"smarthost/config"
)

// ReplyError is a reply the generator did not expect: a refusal, or a
// server that does not offer what the options ask for.
type ReplyError struct {
	// Command is what was sent ("MAIL", "DATA", "end of DATA"…).
	Command string
	// Code is the reply code, 0 when the problem is not a reply.
	Code int
	// Text is the reply text, or what was missing.
	Text string
}

func (e *ReplyError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("load: %s: %s", e.Command, e.Text)
	}
	return fmt.Sprintf("load: %s: %d %s", e.Command, e.Code, e.Text)
}

// client is one SMTP session of the generator.
type client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tp   *textproto.Reader
	ext  map[string]string // EHLO keywords, upper case, and their parameters
}

// dial opens a session ready for MAIL: connected, greeted, EHLO, TLS as
// the mode asks, and AUTH PLAIN when a user is set.
func dial(ctx context.Context, o *Options) (*client, error) {
	d := net.Dialer{Timeout: o.Timeout}
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	var conn = raw
	if o.TLS == config.TLSImplicit {
		conn = tls.Client(raw, o.tlsConfig())
	}
	c := newClient(conn)
	conn.SetDeadline(time.Now().Add(o.Timeout))
	if err := c.open(o); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func newClient(conn net.Conn) *client {
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 4<<10), w: bufio.NewWriterSize(conn, 64<<10)}
	c.tp = textproto.NewReader(c.r)
	return c
}

func (c *client) open(o *Options) error {
	if _, _, err := c.reply("greeting", 220); err != nil {
		return err
	}
	if err := c.ehlo(o.Helo); err != nil {
		return err
	}
	if o.TLS == config.TLSStartTLS {
		if _, ok := c.ext["STARTTLS"]; !ok {
			return &ReplyError{Command: "STARTTLS", Text: "not offered"}
		}
		if err := c.cmd("STARTTLS", 220, "STARTTLS"); err != nil {
			return err
		}
		tc := tls.Client(c.conn, o.tlsConfig())
		*c = *newClient(tc)
		if err := c.ehlo(o.Helo); err != nil {
			return err
		}
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		// Handshake now, so that a failure is reported as one.
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("load: TLS handshake: %w", err)
		}
	}
	if o.User != "" {
		if !strings.Contains(" "+c.ext["AUTH"]+" ", " PLAIN ") {
			return &ReplyError{Command: "AUTH", Text: "PLAIN not offered"}
		}
		// RFC 4616: authzid NUL authcid NUL password; the initial
		// response goes on the command line (RFC 4954 §4).
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + o.User + "\x00" + o.Password))
		if err := c.cmd("AUTH", 235, "AUTH PLAIN %s", ir); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) ehlo(helo string) error {
	if _, err := fmt.Fprintf(c.w, "EHLO %s\r\n", helo); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	_, text, err := c.reply("EHLO", 250)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	lines := strings.Split(text, "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// cmd sends one command line and expects the reply want (see reply).
func (c *client) cmd(name string, want int, format string, args ...any) error {
	if _, err := fmt.Fprintf(c.w, format+"\r\n", args...); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	_, _, err := c.reply(name, want)
	return err
}

// reply reads a (multi-line) reply and checks its code: a want of 250
// accepts any 2xx (251, 252), any other want only itself.
func (c *client) reply(name string, want int) (int, string, error) {
	code, text, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		return 0, "", fmt.Errorf("load: %s: %w", name, err)
	}
	if code != want && (want != 250 || code/100 != 2) {
		return code, text, &ReplyError{Command: name, Code: code, Text: text}
	}
	return code, text, nil
}

// send runs one transaction: MAIL, RCPT, DATA, the message, and the final
// dot. It returns the time from the end of the data written to the reply
// read.
func (c *client) send(o *Options, m *message, seq int64) (time.Duration, error) {
	c.conn.SetDeadline(time.Now().Add(o.Timeout))
	if err := c.cmd("MAIL", 250, "MAIL FROM:<%s>", o.From); err != nil {
		return 0, err
	}
	if err := c.cmd("RCPT", 250, "RCPT TO:<%s>", o.To); err != nil {
		return 0, err
	}
	if err := c.cmd("DATA", 354, "DATA"); err != nil {
		return 0, err
	}
	c.w.Write(m.header(seq))
	c.w.Write(m.body)
	c.w.WriteString(".\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, _, err := c.reply("end of DATA", 250); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// quit ends the session politely; errors do not matter any more.
func (c *client) quit() {
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	c.cmd("QUIT", 221, "QUIT")
	c.conn.Close()
}

// isReply reports whether err is the server's refusal rather than a
// broken connection.
func isReply(err error) bool {
	var re *ReplyError
	return errors.As(err, &re) && re.Code != 0
}
