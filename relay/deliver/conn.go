package deliver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/queue/mlog"
	"smarthost/relay/route"
)

// tlsMode is how a connection uses TLS. Connections are cached per host
// and mode, so that a connection opened under "may" (perhaps plain text) is
// never reused for a destination that requires "verify".
type tlsMode struct {
	policy   config.DeliveryTLS
	implicit bool // smtps: TLS before the greeting (RFC 8314)
}

// poolKey identifies the connections that may carry a message.
type poolKey struct {
	host string
	port int
	mode tlsMode
}

// conn is one SMTP client connection, ready for MAIL FROM: greeted, EHLO
// done, TLS negotiated as the policy asks. It is used by one delivery at a
// time.
type conn struct {
	id      uint64
	key     poolKey
	name    string // host name: certificate checks, Remote-MTA
	mx      string // name[ip]:port, for the log and the Result
	raw     net.Conn
	data    net.Conn // what client speaks over, TLS included; dotStuffer writes message data to it
	client  *smtp.Client
	tls     string // "TLSv1.3", or "" for plain text
	created time.Time
	queueID queue.ID // the message being sent, for the Debug trace

	// Owned by the pool while the connection is idle.
	idleSince time.Time
	timer     *time.Timer
}

// connect opens a connection to one address of h. Under the "may" policy a
// failed TLS handshake is retried once on a new connection without
// STARTTLS, as Postfix does, and logged as tls_fallback.
func (d *Deliverer) connect(ctx context.Context, id queue.ID, h route.Host, ip netip.Addr, mode tlsMode) (*conn, *Error) {
	c, err, fallback := d.open(ctx, id, h, ip, mode, true)
	if fallback != nil {
		d.logTLSFallback(id, h.Name, fallback)
		c, err, _ = d.open(ctx, id, h, ip, mode, false)
	}
	return c, err
}

// open dials and runs the dialogue up to the point where MAIL FROM may be
// sent. When offerTLS is false, STARTTLS is not tried even if offered. A
// non-nil fallback means: the TLS handshake failed under the "may" policy
// and the caller should try again without TLS.
func (d *Deliverer) open(ctx context.Context, id queue.ID, h route.Host, ip netip.Addr, mode tlsMode, offerTLS bool) (_ *conn, _ *Error, fallback error) {
	c := &conn{
		id:      d.connID.Add(1),
		key:     poolKey{host: h.Name, port: h.Port, mode: mode},
		name:    h.Name,
		mx:      hostPort(h, ip),
		created: d.now(),
		queueID: id,
	}
	dctx, cancel := context.WithTimeout(ctx, d.connectTimeout)
	raw, err := d.dial(dctx, "tcp", netip.AddrPortFrom(ip, uint16(h.Port)).String())
	cancel()
	if err != nil {
		// RFC 3463 X.4.1: no answer from host.
		return nil, temporary("connect", "4.4.1", fmt.Errorf("connect to %s: %w", c.mx, err)), nil
	}
	c.raw = raw
	d.debug(c, "connect")
	// Cancelling ctx closes the connection, which ends any wait for a
	// reply at once instead of after the command timeout.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	nc := raw
	if mode.implicit {
		tc, err := d.handshake(ctx, raw, c.name, mode.policy)
		if err != nil {
			raw.Close()
			return nil, temporary("TLS handshake", "4.7.5", fmt.Errorf("TLS handshake with %s: %w", c.mx, err)), nil
		}
		nc, c.tls = tc, tlsVersion(tc)
	}
	w := &watchConn{Conn: nc}
	c.client, c.data = d.newClient(w), w
	if err := c.client.Hello(d.hostname); err != nil {
		raw.Close()
		cmd := "EHLO"
		if !w.wrote {
			cmd = "greeting"
		}
		return nil, fromReply(cmd, c.mx, err), nil
	}
	d.debug(c, "ehlo")
	if mode.implicit {
		return c, nil, nil
	}

	offered, _ := c.client.Extension("STARTTLS")
	switch {
	case !offered && mode.policy != config.DeliveryTLSMay:
		raw.Close()
		// RFC 3463 X.7.4: security features not supported. Postfix's words.
		return nil, temporary("STARTTLS", "4.7.4", fmt.Errorf("TLS is required, but was not offered by host %s", c.mx)), nil
	case !offered || !offerTLS:
		return c, nil, nil
	}
	if e, fallback := d.startTLS(ctx, id, c, mode); e != nil || fallback != nil {
		return nil, e, fallback
	}
	return c, nil, nil
}

// startTLS sends STARTTLS, does the handshake and says EHLO again. go-smtp
// does STARTTLS only before its first EHLO, which it would then send as
// "localhost"; so the command is sent here, and a new client continues
// over TLS, given the 220 greeting it expects to read first.
//
// On success c is updated. Under "may" a refused STARTTLS continues in
// plain text on the same connection (c unchanged, nil results); a failed
// handshake returns fallback, and the connection is closed.
func (d *Deliverer) startTLS(ctx context.Context, id queue.ID, c *conn, mode tlsMode) (_ *Error, fallback error) {
	c.raw.SetDeadline(time.Now().Add(d.commandTimeout))
	_, err := io.WriteString(c.raw, "STARTTLS\r\n")
	if err == nil {
		// Anything the server sent after its 220 is discarded with this
		// reader: RFC 3207 §6 and the STARTTLS command-injection attacks
		// (CVE-2011-0411 and its client-side kin) say nothing received
		// before the handshake may be used after it.
		_, _, err = textproto.NewReader(bufio.NewReader(c.raw)).ReadResponse(220)
	}
	c.raw.SetDeadline(time.Time{})
	var te *textproto.Error
	switch {
	case errors.As(err, &te) && mode.policy == config.DeliveryTLSMay:
		d.logTLSFallback(id, c.name, fmt.Errorf("%s refused STARTTLS: %d %s", c.mx, te.Code, te.Msg))
		return nil, nil
	case errors.As(err, &te):
		c.raw.Close()
		e := fromReply("STARTTLS", c.mx, replyError(te))
		e.Permanent, e.Enhanced = false, "4.7.5" // a TLS problem never bounces
		return e, nil
	case err != nil:
		c.raw.Close()
		return fromReply("STARTTLS", c.mx, err), nil
	}
	tc, err := d.handshake(ctx, c.raw, c.name, mode.policy)
	if err != nil {
		c.raw.Close()
		herr := fmt.Errorf("TLS handshake with %s: %w", c.mx, err)
		if mode.policy == config.DeliveryTLSMay {
			return nil, herr
		}
		// RFC 3463 X.7.5: cryptographic failure; Postfix defers it.
		return temporary("STARTTLS", "4.7.5", herr), nil
	}
	c.tls = tlsVersion(tc)
	// The greeting is ours; the server sent its own before STARTTLS.
	c.data = &prefixConn{Conn: tc, prefix: []byte("220 " + c.name + " TLS ready\r\n")}
	c.client = d.newClient(c.data)
	if err := c.client.Hello(d.hostname); err != nil {
		c.raw.Close()
		return fromReply("EHLO", c.mx, err), nil
	}
	d.debug(c, "starttls")
	return nil, nil
}

// handshake runs a TLS client handshake bounded by the command timeout.
func (d *Deliverer) handshake(ctx context.Context, raw net.Conn, name string, policy config.DeliveryTLS) (*tls.Conn, error) {
	tc := tls.Client(raw, d.tlsConfig(name, policy))
	hctx, cancel := context.WithTimeout(ctx, d.commandTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// tlsConfig follows Postfix's smtp_tls_security_level: "verify" checks the
// certificate chain against RootCAs and the host name (the MX host, or the
// bracketed next hop); "encrypt" and "may" take any certificate, because
// opportunistic TLS is about passive eavesdroppers (RFC 7435), and "may"
// also accepts TLS 1.0, since old TLS still beats the plain text it would
// fall back to.
func (d *Deliverer) tlsConfig(name string, policy config.DeliveryTLS) *tls.Config {
	cfg := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	switch policy {
	case config.DeliveryTLSVerify:
		cfg.RootCAs = d.RootCAs
	case config.DeliveryTLSMay:
		cfg.InsecureSkipVerify = true
		cfg.MinVersion = tls.VersionTLS10
	default:
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

func (d *Deliverer) newClient(nc net.Conn) *smtp.Client {
	cl := smtp.NewClient(nc)
	cl.CommandTimeout = d.commandTimeout
	// RFC 5321 §4.5.3.2.6: wait 10 minutes for the reply to the final
	// dot, twice the 5-minute command timeout by default.
	cl.SubmissionTimeout = 2 * d.commandTimeout
	return cl
}

// quit ends a connection politely, with a short timeout: nothing depends
// on the answer.
func (d *Deliverer) quit(c *conn) {
	c.client.CommandTimeout = min(d.commandTimeout, quitTimeout)
	err := c.client.Quit()
	c.raw.Close()
	d.debug(c, "quit", mlog.Reply, outcome(c, err))
}

// tlsVersion names the TLS version as Postfix and OpenSSL write it.
func tlsVersion(tc *tls.Conn) string {
	return strings.Replace(tls.VersionName(tc.ConnectionState().Version), "TLS ", "TLSv", 1)
}

// replyError turns a textproto reply error into go-smtp's type, with the
// enhanced code split off as go-smtp does.
func replyError(te *textproto.Error) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: te.Code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: te.Msg}
	code, text, ok := strings.Cut(te.Msg, " ")
	parts := strings.Split(code, ".")
	if !ok || len(parts) != 3 {
		return e
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return e
		}
		ec[i] = n
	}
	e.EnhancedCode, e.Message = ec, text
	return e
}

// watchConn records whether anything was written, which tells a failed
// greeting (nothing sent yet) from a failed EHLO.
type watchConn struct {
	net.Conn
	wrote bool
}

func (w *watchConn) Write(b []byte) (int, error) {
	w.wrote = true
	return w.Conn.Write(b)
}

// prefixConn reads prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
