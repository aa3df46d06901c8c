package deliver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"smarthost/queue"
	"smarthost/queue/mlog"
)

// transaction sends one message to the group's recipients over c: MAIL
// FROM, one RCPT TO per recipient, DATA. A refused RCPT fails only its
// recipient; the others still get the message. healthy reports whether c
// may carry another transaction (after RSET).
func (d *Deliverer) transaction(c *conn, dl *queue.Delivery, g *group, a attempt) (results []queue.Result, healthy bool) {
	a.remoteMTA, a.mx, a.tls = c.name, c.mx, c.tls
	needUTF8 := dl.UTF8 || !isASCII(dl.From) || !allASCII(g.rcpts)
	if ok, _ := c.client.Extension("SMTPUTF8"); needUTF8 && !ok {
		// RFC 6531: a message that needs SMTPUTF8 cannot go to a server
		// that does not offer it, and nothing here downgrades it. §3.5
		// uses X.6.7, non-ASCII addresses not permitted. Postfix bounces
		// it too, with these words.
		return a.failAll(g.rcpts, permanent("MAIL FROM", "5.6.7", fmt.Errorf("SMTPUTF8 is required, but was not offered by host %s", c.mx))), true
	}
	if limit, ok := c.client.MaxMessageSize(); ok && limit > 0 && dl.Size > int64(limit) {
		// RFC 1870 §6.1: a message larger than the advertised SIZE
		// would be refused; RFC 3463 X.3.4, message too big for system.
		return a.failAll(g.rcpts, permanent("MAIL FROM", "5.3.4", fmt.Errorf("message size %d exceeds size limit %d of server %s", dl.Size, limit, c.mx))), true
	}

	// go-smtp adds BODY=8BITMIME whenever the server offers 8BITMIME. A
	// server without it gets 8-bit content as it is: converting it would
	// break the DKIM signature, and the bytes sent are the bytes queued.
	err := c.client.Mail(dl.From, &smtp.MailOptions{Size: dl.Size, UTF8: needUTF8})
	d.debug(c, "mail", mlog.From, dl.From, mlog.Reply, outcome(c, err))
	if err != nil {
		e := fromReply("MAIL FROM", c.mx, err)
		return a.failAll(g.rcpts, e), sessionGoesOn(err)
	}

	var accepted []string
	for i, rcpt := range g.rcpts {
		err := c.client.Rcpt(rcpt, nil)
		d.debug(c, "rcpt", mlog.Rcpt, rcpt, mlog.Reply, outcome(c, err))
		if err == nil {
			accepted = append(accepted, rcpt)
			continue
		}
		e := fromReply("RCPT TO", c.mx, err)
		if !sessionGoesOn(err) {
			// The session is over: every recipient not yet done shares
			// the failure, including those already accepted.
			results = append(results, a.failAll(accepted, e)...)
			return append(results, a.failAll(g.rcpts[i:], e)...), false
		}
		results = append(results, a.failed(rcpt, e))
	}
	if len(accepted) == 0 {
		return results, true
	}
	res, healthy := d.data(c, dl, a, accepted)
	return append(results, res...), healthy
}

// data sends the message to the accepted recipients. The message streams
// from the spool file to the socket; it is never held in memory whole.
func (d *Deliverer) data(c *conn, dl *queue.Delivery, a attempt, accepted []string) (results []queue.Result, healthy bool) {
	rc, err := dl.Open()
	if err != nil {
		return a.failAll(accepted, temporary("DATA", "4.3.0", fmt.Errorf("open queued message %s: %w", dl.ID, err))), true
	}
	defer rc.Close()

	w, err := c.client.Data()
	d.debug(c, "data", mlog.Reply, outcome(c, err))
	if err != nil {
		return a.failAll(accepted, fromReply("DATA", c.mx, err)), sessionGoesOn(err)
	}
	// The bytes sent are those of the spool (CRLF line ends, as the spool
	// keeps them), dot-stuffed by dotStuffer straight onto the connection;
	// the DataCommand writes the last line break and the final dot.
	bufs := d.getDataBuffers()
	defer d.buffers.Put(bufs)
	src := &readTracker{r: rc}
	dst := newDotStuffer(&deadlineWriter{w: c.data, conn: c.raw, timeout: d.commandTimeout}, bufs.out)
	n, err := io.CopyBuffer(dst, src, bufs.in)
	if err == nil {
		var tail []byte
		if tail, err = dst.Flush(); err == nil {
			_, err = w.Write(tail)
		}
	}
	if err != nil {
		if src.err != nil {
			// Only the final dot completes a message (RFC 5321 §4.1.1.4):
			// closing the connection instead makes the server drop the
			// part it has, so nothing truncated is ever delivered.
			c.raw.Close()
			return a.failAll(accepted, temporary("DATA", "4.3.0", fmt.Errorf("read queued message %s: %w", dl.ID, src.err))), false
		}
		return a.failAll(accepted, fromReply("DATA", c.mx, err)), false
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		d.debug(c, "end of data", mlog.Size, n, mlog.Reply, outcome(c, err))
		return a.failAll(accepted, fromReply("end of data", c.mx, err)), sessionGoesOn(err)
	}
	reply := "250 " + strings.ReplaceAll(resp.StatusText, "\n", " ")
	d.debug(c, "end of data", mlog.Size, n, mlog.Reply, reply)
	for _, r := range accepted {
		results = append(results, a.delivered(r, reply))
	}
	return results, true
}

// outcome describes a command's result for the Debug trace: "ok" (go-smtp
// does not return the text of positive replies), the reply, or the error.
func outcome(c *conn, err error) string {
	if err == nil {
		return "ok"
	}
	return fromReply("", c.mx, err).reply()
}

// sessionGoesOn reports whether, after err, the connection can carry
// more commands: a reply other than 421 (RFC 5321 §3.8: 421 means the
// server closes the channel); not a network error.
func sessionGoesOn(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code != 421
}

// readTracker remembers a read error, to tell a failing spool file from a
// failing connection.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// deadlineWriter bounds each write of message data: go-smtp sets
// deadlines for commands but not while the data streams. RFC 5321
// §4.5.3.2.5 asks 3 minutes per data block; the command timeout is used.
type deadlineWriter struct {
	w       io.Writer
	conn    net.Conn
	timeout time.Duration
}

func (dw *deadlineWriter) Write(b []byte) (int, error) {
	dw.conn.SetWriteDeadline(time.Now().Add(dw.timeout))
	return dw.w.Write(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
