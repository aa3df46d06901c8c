package smtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"smarthost/config"
	"smarthost/queue/mlog"
	"smarthost/relay/dkim"
	"smarthost/relay/dnsbl"
	"smarthost/relay/inbound"
	"smarthost/relay/reply"
)

// Options is everything a listener's sessions need. It can be replaced while
// the server runs ([Server.SetOptions], for SIGHUP); each session keeps the
// Options it started with.
type Options struct {
	// Hostname is our name in the greeting, EHLO reply and Received.
	Hostname string
	Limits   config.Limits
	// TrustedNetworks may relay without AUTH on submission listeners.
	TrustedNetworks []netip.Prefix
	// Destinations decides RCPT on mx listeners. Required for mx.
	Destinations Destinations
	// Auth checks logins on submission listeners; nil offers no AUTH.
	Auth Authenticator
	// Senders restricts authenticated users' sender addresses; nil allows
	// any.
	Senders SenderPolicy
	// DKIM signs submission mail; nil signs nothing. Never used on mx
	// listeners.
	DKIM *dkim.Table
	// Inbound checks SPF, DKIM and DMARC of mail on mx listeners; nil
	// checks nothing.
	Inbound *inbound.Checker
	// Recipients decides whether a relay-domain recipient exists (the
	// relay_recipients table and verify_recipients probes); nil accepts
	// every recipient of a relay domain.
	Recipients RecipientChecker
	// DNSBL refuses clients listed by DNS blocklists on mx listeners; nil
	// checks no list.
	DNSBL *dnsbl.Checker
	// Greylist defers unknown (client, sender, recipient) triplets on mx
	// listeners; nil turns greylisting off.
	Greylist Greylister
	// Spool receives accepted messages. Required.
	Spool  Spool
	Logger *slog.Logger
	// Now is the clock for Received headers; nil means time.Now.
	Now func() time.Time
}

// Listener describes the endpoint a Server serves.
type Listener struct {
	Name string
	Role config.Role
	TLS  config.TLSMode
}

// Server is one listener's SMTP server: go-smtp with smarthost's sessions,
// limits and connection gate. Create it with [New]; it is safe for
// concurrent use.
type Server struct {
	name    string
	role    config.Role
	tlsMode config.TLSMode
	tlsConf *tls.Config

	options atomic.Pointer[Options]
	smtp    *smtp.Server
	gate    *connGate
	connSeq atomic.Uint64
}

// New returns a server for the listener. tlsConfig is required unless the
// listener's TLS mode is none.
func New(l Listener, tlsConfig *tls.Config, opts Options) (*Server, error) {
	if !l.Role.Valid() || !l.TLS.Valid() {
		return nil, fmt.Errorf("smtpd: listener %q: bad role %q or TLS mode %q", l.Name, l.Role, l.TLS)
	}
	if l.TLS != config.TLSNone && tlsConfig == nil {
		return nil, fmt.Errorf("smtpd: listener %q: TLS mode %s needs a certificate", l.Name, l.TLS)
	}
	if err := checkOptions(l.Role, &opts); err != nil {
		return nil, fmt.Errorf("smtpd: listener %q: %w", l.Name, err)
	}
	srv := &Server{name: l.Name, role: l.Role, tlsMode: l.TLS, tlsConf: tlsConfig}
	srv.options.Store(&opts)
	srv.gate = newConnGate()

	s := smtp.NewServer(srv)
	s.Domain = opts.Hostname
	if l.TLS != config.TLSNone {
		s.TLSConfig = tlsConfig
	}
	// go-smtp reads commands and DATA through one line-length limit, so it
	// is set to the generous DATA bound (with room for the CRLF and
	// dot-stuffing; the exact bound is enforced by lineNormalizer with a
	// proper reply). Command syntax is then bounded by the address and
	// argument checks in the session (RFC 5321 §4.5.3.1 path and part
	// lengths), which is what the strict command limit protects.
	s.MaxLineLength = int(opts.Limits.MaxLineLength.Bytes) + 16
	s.MaxMessageBytes = opts.Limits.MaxMessageSize.Bytes
	s.MaxRecipients = opts.Limits.MaxRecipients
	s.ReadTimeout = opts.Limits.Timeout.Duration
	s.WriteTimeout = opts.Limits.Timeout.Duration
	s.EnableSMTPUTF8 = true
	// TLS for AUTH is enforced by the session (AuthMechanisms and Auth),
	// which answers plain-text AUTH with RFC 4954's 538 5.7.11.
	s.AllowInsecureAuth = true
	s.ErrorLog = errorLog{log: opts.Logger, listener: l.Name}
	srv.smtp = s
	return srv, nil
}

func checkOptions(role config.Role, o *Options) error {
	if o.Spool == nil {
		return fmt.Errorf("no spool")
	}
	if role == config.RoleMX && o.Destinations == nil {
		return fmt.Errorf("mx listener without relay destinations")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// SetOptions replaces the options for sessions that start from now on,
// e.g. after a configuration reload. Limits that go-smtp holds (sizes,
// timeouts) keep their values until the listener is restarted.
func (srv *Server) SetOptions(opts Options) error {
	if err := checkOptions(srv.role, &opts); err != nil {
		return fmt.Errorf("smtpd: listener %q: %w", srv.name, err)
	}
	srv.options.Store(&opts)
	return nil
}

func (srv *Server) opts() *Options { return srv.options.Load() }

// Serve accepts connections on l until [Server.Close] or
// [Server.Shutdown]. For implicit TLS it wraps l in TLS itself; l is the
// plain TCP listener in every mode.
func (srv *Server) Serve(l net.Listener) error {
	var gl net.Listener = &gatedListener{Listener: l, srv: srv}
	if srv.tlsMode == config.TLSImplicit {
		gl = tls.NewListener(gl, srv.tlsConf)
	}
	return srv.smtp.Serve(gl)
}

// Close stops listening and closes every connection at once.
func (srv *Server) Close() error { return srv.smtp.Close() }

// Shutdown stops listening and waits for sessions to end until ctx is done.
func (srv *Server) Shutdown(ctx context.Context) error { return srv.smtp.Shutdown(ctx) }

// NewSession implements smtp.Backend. go-smtp calls it at the first
// HELO/EHLO of a connection and again after STARTTLS.
func (srv *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	o := srv.opts()
	s := &session{srv: srv, o: o, conn: c, clientIP: remoteIP(c.Conn())}
	s.connID = srv.connSeq.Add(1)
	s.log = o.Logger.With(slog.Uint64(mlog.ConnID, s.connID))
	if st, ok := c.TLSConnectionState(); ok {
		s.tls = &st
	}
	helo := c.Hostname()
	if !validHelo(helo) {
		s.logRejected("", "helo", reply.BadHelo, "invalid HELO argument")
		return nil, reply.BadHelo.SMTP()
	}
	s.log.Debug("session", slog.String(mlog.ClientIP, s.clientIP.String()), slog.String("helo", helo), slog.String(mlog.TLS, s.tlsSummary()))
	return s, nil
}

// validHelo accepts what Postfix accepts by default (no
// reject_invalid_helo_hostname): anything printable and bounded, since many
// real clients send bare names. It refuses control characters and
// over-long arguments (RFC 5321 §4.5.3.1.2: 255 octets).
func validHelo(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] == 0x7f {
			return false
		}
	}
	return true
}

func remoteIP(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// errorLog adapts go-smtp's logger to slog. go-smtp reports connection
// errors here (failed handshakes from scanners, resets); they are noise at
// Info, so they go to Debug; recovered panics go to Error.
type errorLog struct {
	log      *slog.Logger
	listener string
}

func (e errorLog) Printf(format string, v ...any) { e.emit(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.emit(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (e errorLog) emit(msg string) {
	level := slog.LevelDebug
	event := "connection_error"
	if strings.HasPrefix(msg, "panic") {
		level, event = slog.LevelError, mlog.Panic
	}
	e.log.Log(context.Background(), level, event, slog.String(mlog.Listener, e.listener), slog.String(mlog.Error, msg))
}

// connGate counts connections per listener and per client IP.
type connGate struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

func newConnGate() *connGate { return &connGate{perIP: make(map[netip.Addr]int)} }

// admit reserves a slot for ip or says why not.
func (g *connGate) admit(ip netip.Addr, maxTotal, maxPerIP int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= maxTotal || g.perIP[ip] >= maxPerIP {
		return false
	}
	g.total++
	g.perIP[ip]++
	return true
}

func (g *connGate) release(ip netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

// gatedListener refuses connections before go-smtp sees them: from banned
// IPs on submission listeners (fail2ban's job in the classic stack) and
// beyond the connection limits (Postfix's anvil). On plain-text listeners
// the client gets a 421 reply; on implicit-TLS listeners the connection is
// closed before the handshake, so a refused client costs no TLS work.
type gatedListener struct {
	net.Listener
	srv *Server
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		o := l.srv.opts()
		ip := remoteIP(c)
		if l.srv.role == config.RoleSubmission && o.Auth != nil && o.Auth.Banned(ip) {
			l.refuse(c, ip, reply.Banned, "client banned after failed logins")
			continue
		}
		if !l.srv.gate.admit(ip, o.Limits.MaxConnections, o.Limits.MaxConnectionsPerIP) {
			l.refuse(c, ip, reply.TooManyConnections, "connection limit reached")
			continue
		}
		return &gatedConn{Conn: c, release: func() { l.srv.gate.release(ip) }}, nil
	}
}

func (l *gatedListener) refuse(c net.Conn, ip netip.Addr, r reply.Reply, reason string) {
	l.srv.logRefused(ip.String(), r, reason)
	if l.srv.tlsMode != config.TLSImplicit {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "%s\r\n", r.Error())
	}
	c.Close()
}

// gatedConn gives back its gate slot exactly once when closed.
type gatedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *gatedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
