package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Command names the SMTP command a [Reply] answers.
type Command string

// The commands the [Options.Reply] hook is asked about.
const (
	// CommandEHLO is EHLO or HELO; the argument is the client's name. It is
	// asked again after STARTTLS, when the client says EHLO again.
	CommandEHLO Command = "EHLO"
	// CommandMAIL is MAIL FROM; the argument is the reverse-path.
	CommandMAIL Command = "MAIL"
	// CommandRCPT is RCPT TO; the argument is the forward-path.
	CommandRCPT Command = "RCPT"
	// CommandDATA is DATA; the argument is "". The hook is asked once the
	// server has answered 354: a Reply is given after the final dot (the
	// way a server refuses content), Drop closes the connection at once.
	CommandDATA Command = "DATA"
)

// Reply replaces the sink's normal answer to one command.
type Reply struct {
	// Code is the reply code, e.g. 550 or 451.
	Code int
	// Enhanced is the RFC 3463 code, e.g. "5.1.1"; "" sends Code's class
	// with ".0.0".
	Enhanced string
	// Text is the reply text.
	Text string
	// Drop closes the connection instead of replying.
	Drop bool
}

// Options configure a [Sink]. The zero value is a plain-text sink that
// accepts everything.
type Options struct {
	// Hostname is the name in the greeting and EHLO reply. Default
	// "sink.invalid".
	Hostname string
	// TLSConfig, when set, makes the sink offer STARTTLS with it, or run
	// implicit TLS when ImplicitTLS is true.
	TLSConfig *tls.Config
	// ImplicitTLS starts TLS before the greeting (RFC 8314, port 465).
	// Requires TLSConfig.
	ImplicitTLS bool
	// SMTPUTF8 advertises the SMTPUTF8 extension (RFC 6531).
	SMTPUTF8 bool
	// MaxMessageBytes is advertised as SIZE and enforced; 0 means no
	// limit.
	MaxMessageBytes int64
	// MaxLineLength bounds one line of command or content. Default 64 KiB,
	// generous because real mail has lines longer than RFC 5322 allows.
	MaxLineLength int
	// Timeout bounds each read and write. Default 5 minutes (RFC 5321
	// §4.5.3.2.7, the server timeout).
	Timeout time.Duration
	// DiscardData records envelopes but not message bytes (Message.Data
	// stays nil), for long runs such as benchmarks.
	DiscardData bool
	// Reply decides the answer to each command: nil accepts it, a *Reply
	// refuses it or drops the connection. It is called from the
	// connection's goroutine and must be safe for concurrent use. A nil
	// Reply hook accepts everything.
	Reply func(cmd Command, arg string) *Reply
	// Logger receives connection errors at Debug. Default: discard.
	Logger *slog.Logger
}

// Message is one accepted transaction.
type Message struct {
	// Conn numbers the connection that carried the message: 1 for the
	// first connection accepted, and so on.
	Conn int
	// Helo is the client's last EHLO/HELO name.
	Helo string
	// From is the reverse-path; "" for the null sender.
	From string
	// To are the accepted forward-paths, in RCPT order.
	To []string
	// Data is the message as sent, dot-unstuffed, CRLFs kept.
	Data []byte
	// UTF8 is true when MAIL FROM carried SMTPUTF8.
	UTF8 bool
	// Body is MAIL FROM's BODY= value ("8BITMIME", "7BIT") or "".
	Body string
	// Size is MAIL FROM's SIZE= value, 0 when absent.
	Size int64
	// TLS is the TLS version the message travelled under ("TLSv1.3"), or
	// "" for plain text.
	TLS string
}

// Sink is a recording SMTP server. Create it with [New], then call
// [Sink.Serve]. Its methods are safe for concurrent use.
type Sink struct {
	opts   Options
	server *smtp.Server

	mu      sync.Mutex
	msgs    []Message
	conns   int
	changed chan struct{} // closed and replaced when a message arrives
}

// New returns a sink configured by opts.
func New(opts Options) *Sink {
	if opts.Hostname == "" {
		opts.Hostname = "sink.invalid"
	}
	if opts.MaxLineLength == 0 {
		opts.MaxLineLength = 64 << 10
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{opts: opts, changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = opts.Hostname
	srv.EnableSMTPUTF8 = opts.SMTPUTF8
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxLineLength = opts.MaxLineLength
	srv.ReadTimeout = opts.Timeout
	srv.WriteTimeout = opts.Timeout
	srv.ErrorLog = errorLog{opts.Logger}
	if !opts.ImplicitTLS {
		srv.TLSConfig = opts.TLSConfig
	}
	s.server = srv
	return s
}

// Serve accepts connections on l until [Sink.Close]; it then returns nil.
// With ImplicitTLS, l is wrapped in TLS here.
func (s *Sink) Serve(l net.Listener) error {
	var ln net.Listener = &countingListener{Listener: l, s: s}
	if s.opts.ImplicitTLS {
		if s.opts.TLSConfig == nil {
			return fmt.Errorf("sink: implicit TLS needs a TLS config")
		}
		ln = tls.NewListener(ln, s.opts.TLSConfig)
	}
	if err := s.server.Serve(ln); err != nil {
		return fmt.Errorf("sink: serve %s: %w", l.Addr(), err)
	}
	return nil
}

// Close stops the listener and closes every connection.
func (s *Sink) Close() error {
	if err := s.server.Close(); err != nil {
		return fmt.Errorf("sink: close: %w", err)
	}
	return nil
}

// Messages returns the messages accepted so far, in order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Connections returns how many connections the sink has accepted.
func (s *Sink) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Wait blocks until at least n messages have been accepted and returns
// them, or returns ctx's error with the messages so far.
func (s *Sink) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return msgs, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("sink: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

func (s *Sink) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sink) nextConn() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns++
	return s.conns
}

// countingListener numbers connections as they are accepted.
type countingListener struct {
	net.Listener
	s *Sink
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &numberedConn{Conn: c, n: l.s.nextConn()}, nil
}

type numberedConn struct {
	net.Conn
	n int
}

// connNumber finds the number of a connection, through TLS if need be.
func connNumber(c net.Conn) int {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if nc, ok := c.(*numberedConn); ok {
		return nc.n
	}
	return 0
}

// smtpError turns a Reply into what go-smtp sends.
func (r *Reply) smtpError() *smtp.SMTPError {
	e := &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: r.Text}
	parts := strings.Split(r.Enhanced, ".")
	if len(parts) == 3 {
		var code smtp.EnhancedCode
		ok := true
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			ok = ok && err == nil
			code[i] = n
		}
		if ok {
			e.EnhancedCode = code
		}
	}
	return e
}

// errorLog adapts go-smtp's Logger to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Debug("sink: " + fmt.Sprintf(format, v...))
}

func (e errorLog) Println(v ...any) {
	e.log.Debug("sink: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// session is one SMTP session; go-smtp starts a new one after each
// EHLO that follows STARTTLS.
type session struct {
	s    *Sink
	conn *smtp.Conn
	msg  Message
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	if err := s.hook(c, CommandEHLO, c.Hostname()); err != nil {
		return nil, err
	}
	m := Message{Conn: connNumber(c.Conn()), Helo: c.Hostname()}
	if st, ok := c.TLSConnectionState(); ok {
		m.TLS = tlsVersion(st.Version)
	}
	return &session{s: s, conn: c, msg: m}, nil
}

// tlsVersion names a TLS version the way smarthost logs it: "TLSv1.3"
// (as Postfix and OpenSSL write it).
func tlsVersion(v uint16) string {
	return strings.Replace(tls.VersionName(v), "TLS ", "TLSv", 1)
}

// hook asks the Reply hook; it returns the error to give go-smtp, after
// closing the connection for a Drop.
func (s *Sink) hook(c *smtp.Conn, cmd Command, arg string) error {
	if s.opts.Reply == nil {
		return nil
	}
	r := s.opts.Reply(cmd, arg)
	if r == nil {
		return nil
	}
	if r.Drop {
		c.Conn().Close()
		return fmt.Errorf("sink: dropped the connection at %s", cmd)
	}
	return r.smtpError()
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if err := ss.s.hook(ss.conn, CommandMAIL, from); err != nil {
		return err
	}
	ss.msg.From, ss.msg.To = from, nil
	ss.msg.UTF8, ss.msg.Body, ss.msg.Size = false, "", 0
	if opts != nil {
		ss.msg.UTF8, ss.msg.Body, ss.msg.Size = opts.UTF8, string(opts.Body), opts.Size
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.hook(ss.conn, CommandRCPT, to); err != nil {
		return err
	}
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if ss.s.opts.Reply != nil {
		if rep := ss.s.opts.Reply(CommandDATA, ""); rep != nil {
			if rep.Drop {
				ss.conn.Conn().Close()
				return fmt.Errorf("sink: dropped the connection at %s", CommandDATA)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
			return rep.smtpError()
		}
	}
	m := ss.msg
	m.To = append([]string(nil), ss.msg.To...)
	if ss.s.opts.DiscardData {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	} else {
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, r); err != nil {
			return err
		}
		m.Data = buf.Bytes()
	}
	ss.s.record(m)
	return nil
}

func (ss *session) Reset() {
	ss.msg.From, ss.msg.To = "", nil
}

func (ss *session) Logout() error { return nil }
