package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/queue"
	"smarthost/queue/control"
	"smarthost/relay/certs"
	"smarthost/relay/deliver"
	"smarthost/relay/dkim"
	"smarthost/relay/dnsbl"
	"smarthost/relay/greylist"
	"smarthost/relay/inbound"
	"smarthost/relay/metrics"
	"smarthost/relay/recipients"
	"smarthost/relay/resolve"
	"smarthost/relay/route"
	"smarthost/relay/smtpd"
)

// Options configures [New]. Only Config is required; the rest lets tests
// and the demo replace what touches the outside world.
type Options struct {
	Config *config.Config
	// Logger receives the mail log; nil discards it.
	Logger *slog.Logger
	// Listeners supplies already-open listeners by listener name; names not
	// in the map are opened from their configured address.
	Listeners map[string]net.Listener
	// Resolver replaces the resolver built from the [dns] section.
	Resolver resolve.Resolver
	// Dial replaces the outbound dialer (tests map MX hosts to loopback).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs replaces the system roots for outbound TLS verification.
	RootCAs *x509.CertPool
	// Metrics, when set, is served on [metrics] address; its event
	// counters must already wrap Logger's handler (metrics.Registry.Handler).
	Metrics *metrics.Registry
}

// Server is a running smarthost: listeners, sessions, queue, delivery and
// the control socket, built from one configuration.
type Server struct {
	cfg      atomic.Pointer[config.Config]
	log      *slog.Logger
	certs    *certs.Source
	router   *route.Router
	deliver  *deliver.Deliverer
	queue    *queue.Queue
	control  *control.Server
	verifier *auth.Verifier
	guard    *auth.Guard
	dkim     atomic.Pointer[dkim.Table]
	resolver resolve.Resolver

	// mx-listener policy (issue 5): built once, from the start-up
	// configuration.
	inbound    *inbound.Checker
	recipients *recipients.Checker
	dnsbl      *dnsbl.Checker
	greylist   *greylist.Greylist

	listeners []listener
	controlLn net.Listener
	acmeLn    net.Listener
	metrics   *metrics.Registry
	metricsLn net.Listener
}

type listener struct {
	cfg config.Listener
	ln  net.Listener
	srv *smtpd.Server
}

// New builds every part of the server from the configuration and opens its
// listeners and spool, but serves nothing until [Server.Run]. On error
// everything opened so far is closed again.
func New(opts Options) (s *Server, err error) {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s = &Server{log: log}
	s.cfg.Store(cfg)
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: state_dir: %w", err)
	}
	if needsCertificate(cfg) {
		s.certs, err = certs.New(certs.Options{TLS: cfg.TLS, Hostname: cfg.Hostname, StateDir: cfg.StateDir, Logger: log})
		if err != nil {
			return nil, err
		}
	}
	if err := s.loadCredentials(cfg); err != nil {
		return nil, err
	}
	if err := s.openQueue(cfg, opts); err != nil {
		return nil, err
	}
	if err := s.buildMXPolicy(cfg); err != nil {
		return nil, err
	}
	if err := s.openListeners(cfg, opts.Listeners); err != nil {
		return nil, err
	}
	if err := s.openMetrics(cfg, opts.Metrics); err != nil {
		return nil, err
	}
	return s, nil
}

// openMetrics registers the gauges read at each scrape and opens the
// metrics listener.
func (s *Server) openMetrics(cfg *config.Config, reg *metrics.Registry) error {
	if reg == nil || cfg.Metrics.Address == "" {
		return nil
	}
	s.metrics = reg
	reg.Gauge("smarthost_queue_messages", "Messages in the queue.", func() float64 {
		return float64(s.queue.Stats().Messages)
	})
	reg.Gauge("smarthost_queue_oldest_age_seconds", "Age of the oldest queued message; 0 when the queue is empty.", func() float64 {
		if st := s.queue.Stats(); !st.Oldest.IsZero() {
			return time.Since(st.Oldest).Seconds()
		}
		return 0
	})
	if s.certs != nil {
		reg.Gauge("smarthost_tls_certificate_expiry_timestamp_seconds", "When the listener certificate expires (Unix time); 0 before one is loaded.", func() float64 {
			if t := s.certs.NotAfter(); !t.IsZero() {
				return float64(t.Unix())
			}
			return 0
		})
	}
	var err error
	if s.metricsLn, err = net.Listen("tcp", cfg.Metrics.Address); err != nil {
		return fmt.Errorf("relay: metrics.address: %w", err)
	}
	return nil
}

// MetricsAddr returns the metrics listener's address, or nil.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// loadCredentials loads the DKIM keys and the users file and builds the
// login guard.
func (s *Server) loadCredentials(cfg *config.Config) error {
	table, err := loadDKIM(cfg)
	if err != nil {
		return err
	}
	s.dkim.Store(table)
	users, err := loadUsers(cfg, s.log)
	if err != nil {
		return err
	}
	s.verifier = auth.NewVerifier(users, auth.VerifierOptions{})
	s.guard = auth.NewGuard(s.verifier, auth.GuardOptions{Limits: auth.LimitsFromConfig(cfg.Auth)})
	return nil
}

// openQueue builds routing and delivery and opens the spool and its
// control socket.
func (s *Server) openQueue(cfg *config.Config, opts Options) error {
	s.resolver = opts.Resolver
	if s.resolver == nil {
		s.resolver = resolve.New(cfg.DNS.Server, cfg.DNS.Timeout.Duration)
	}
	s.router = route.New(cfg, s.resolver)
	s.deliver = deliver.New(cfg, s.router, s.log)
	if opts.Dial != nil {
		s.deliver.Dial = opts.Dial
	}
	if opts.RootCAs != nil {
		s.deliver.RootCAs = opts.RootCAs
	}
	var err error
	s.queue, err = queue.Open(queue.Options{
		Dir:         filepath.Join(cfg.StateDir, "queue"),
		Hostname:    cfg.Hostname,
		Retry:       durations(cfg.Delivery.Retry),
		MaxLifetime: cfg.Delivery.MaxLifetime.Duration,
		Concurrency: cfg.Delivery.Concurrency,
		Deliverer:   s.deliver,
		Logger:      s.log,
		SignDSN:     dsnSigner(s.dkim.Load),
	})
	if err != nil {
		return err
	}
	s.control = control.NewServer(s.queue, s.log)
	s.controlLn, err = control.Listen(control.SocketPath(cfg.StateDir))
	return err
}

// buildMXPolicy builds what mx listeners check: SPF, DKIM and DMARC of
// incoming mail, which recipients exist, DNS blocklists and greylisting.
func (s *Server) buildMXPolicy(cfg *config.Config) error {
	var err error
	s.inbound, err = inbound.New(inbound.Options{Hostname: cfg.Hostname, Config: cfg.Inbound, Resolver: s.resolver})
	if err != nil {
		return err
	}
	table, err := recipients.NewTable(recipients.TableSource{Entries: cfg.RelayRecipients, File: cfg.RelayRecipientsFile})
	if err != nil {
		return err
	}
	if table.Configured() || cfg.VerifyRecipients {
		opts := recipients.Options{Table: table}
		if cfg.VerifyRecipients {
			opts.Prober = s.deliver
		}
		s.recipients = recipients.New(opts)
	}
	if len(cfg.Inbound.DNSBL) > 0 {
		s.dnsbl = dnsbl.New(cfg.Inbound.DNSBL, s.resolver)
	}
	if cfg.Inbound.Greylisting {
		s.greylist, err = greylist.Open(greylist.Options{Dir: cfg.StateDir,
			Delay: cfg.Inbound.GreylistDelay.Duration, Retention: cfg.Inbound.GreylistRetention.Duration})
		if err != nil {
			return err
		}
	}
	return nil
}

// openListeners builds a session server per listener and opens (or takes
// from given) its socket, and the ACME challenge listener when needed.
func (s *Server) openListeners(cfg *config.Config, given map[string]net.Listener) error {
	for _, lc := range cfg.Listeners {
		l := listener{cfg: lc}
		var err error
		l.srv, err = smtpd.New(smtpd.Listener{Name: lc.Name, Role: lc.Role, TLS: lc.TLS}, s.serverTLS(lc), s.sessionOptions(cfg))
		if err != nil {
			return err
		}
		if l.ln = given[lc.Name]; l.ln == nil {
			if l.ln, err = net.Listen("tcp", lc.Address); err != nil {
				return fmt.Errorf("relay: listener %q: %w", lc.Name, err)
			}
		}
		s.listeners = append(s.listeners, l)
	}
	if s.certs != nil && s.certs.HTTPHandler() != nil {
		var err error
		if s.acmeLn, err = net.Listen("tcp", cfg.TLS.ACMEHTTPAddress); err != nil {
			return fmt.Errorf("relay: tls.acme_http_address: %w", err)
		}
	}
	return nil
}

func needsCertificate(cfg *config.Config) bool {
	for _, l := range cfg.Listeners {
		if l.TLS != config.TLSNone {
			return true
		}
	}
	return cfg.TLS.Source() != ""
}

func (s *Server) serverTLS(lc config.Listener) *tls.Config {
	if lc.TLS == config.TLSNone || s.certs == nil {
		return nil
	}
	return s.certs.ServerConfig()
}

// sessionOptions builds what sessions need from cfg and the current keys.
func (s *Server) sessionOptions(cfg *config.Config) smtpd.Options {
	trusted := make([]netip.Prefix, len(cfg.TrustedNetworks))
	for i, n := range cfg.TrustedNetworks {
		trusted[i] = n.Prefix
	}
	return smtpd.Options{
		Hostname:        cfg.Hostname,
		Limits:          cfg.Limits,
		TrustedNetworks: trusted,
		Destinations:    s.router,
		Auth:            authenticator{guard: s.guard, timeout: cfg.Limits.Timeout.Duration},
		Senders:         auth.NewSenders(cfg.Auth.Senders),
		DKIM:            s.dkim.Load(),
		Inbound:         s.inbound,
		Recipients:      optional[smtpd.RecipientChecker](s.recipients),
		DNSBL:           s.dnsbl,
		Greylist:        optional[smtpd.Greylister](s.greylist),
		Spool:           spool{q: s.queue},
		Logger:          s.log,
	}
}

func loadDKIM(cfg *config.Config) (*dkim.Table, error) {
	if len(cfg.DKIM.Keys) == 0 {
		return nil, nil
	}
	return dkim.Load(cfg.DKIM)
}

// loadUsers reads the users file. A missing file means nobody can log in
// (config validation already warned); a broken one is an error.
func loadUsers(cfg *config.Config, log *slog.Logger) (*auth.Users, error) {
	users, err := auth.LoadUsers(cfg.Auth.UsersFile)
	if errors.Is(err, os.ErrNotExist) {
		logUsersFileMissing(log, cfg.Auth.UsersFile)
		return nil, nil
	}
	return users, err
}

func durations(ds []config.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Duration
	}
	return out
}

// Addr returns the address listener name listens on, or nil.
func (s *Server) Addr(name string) net.Addr {
	for _, l := range s.listeners {
		if l.cfg.Name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// CertPool returns the pool that verifies a self-signed listener
// certificate, or nil when the certificate comes from files or ACME.
func (s *Server) CertPool() *x509.CertPool {
	if s.certs == nil {
		return nil
	}
	return s.certs.CertPool()
}

// Queue returns the server's queue, for the demo and tests.
func (s *Server) Queue() *queue.Queue { return s.queue }

// Run serves every listener, delivers queued mail and answers the control
// socket until ctx is done. Then it stops accepting, gives sessions up to
// drain to finish, stops delivery (queued mail stays on disk) and closes
// everything. It returns the first error that stopped a listener early.
func (s *Server) Run(ctx context.Context, drain time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(s.listeners)+3)
	var wg sync.WaitGroup
	start := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		}()
	}
	stopMetrics := func() {}
	queueDone := make(chan error, 1)
	go func() { queueDone <- s.queue.Run(ctx) }()
	start(func() error { return s.control.Serve(s.controlLn) })
	if s.acmeLn != nil {
		start(func() error { return s.certs.ServeChallenges(ctx, s.acmeLn) })
	}
	if s.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		start(func() error {
			if err := hs.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("relay: metrics: %w", err)
			}
			return nil
		})
		stopMetrics = func() { hs.Close() }
	}
	for _, l := range s.listeners {
		start(func() error {
			if err := l.srv.Serve(l.ln); err != nil {
				return fmt.Errorf("relay: listener %q: %w", l.cfg.Name, err)
			}
			return nil
		})
		s.logListening(l)
	}

	<-ctx.Done()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), drain)
	defer cancelShutdown()
	for _, l := range s.listeners {
		if err := l.srv.Shutdown(shutdownCtx); err != nil {
			l.srv.Close()
		}
	}
	s.control.Close()
	stopMetrics()
	<-queueDone
	s.deliver.Close()
	wg.Wait()
	s.closePolicy()
	s.queue.Close()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// closeAll releases what New opened when it fails half-way.
func (s *Server) closeAll() {
	for _, l := range s.listeners {
		if l.ln != nil {
			l.ln.Close()
		}
	}
	if s.controlLn != nil {
		s.controlLn.Close()
	}
	if s.acmeLn != nil {
		s.acmeLn.Close()
	}
	if s.metricsLn != nil {
		s.metricsLn.Close()
	}
	s.closePolicy()
	if s.queue != nil {
		s.queue.Close()
	}
}

func (s *Server) closePolicy() {
	if s.recipients != nil {
		s.recipients.Close()
	}
	if s.greylist != nil {
		s.greylist.Close()
	}
}

// optional turns a nil pointer into a nil interface: a nil *T stored in an
// interface is not nil, and the session tests the interface.
func optional[I any, T any](p *T) I {
	var zero I
	if p == nil {
		return zero
	}
	return any(p).(I)
}

// Reload applies a new configuration without dropping sessions or queued
// mail: users, DKIM keys, certificates, trusted networks, sender
// permissions, limits of new sessions and ban limits take effect at once.
// Settings that routing and delivery were built from (relay domains,
// transport, delivery, DNS, listeners, hostname, state directory) keep
// their old values until a restart, and each changed one is logged as
// such: accepting mail for a new relay domain before delivery knows its
// transport entry would send it the wrong way. On error nothing changes.
func (s *Server) Reload(cfg *config.Config) error {
	table, err := loadDKIM(cfg)
	if err != nil {
		return err
	}
	users, err := loadUsers(cfg, s.log)
	if err != nil {
		return err
	}
	if s.certs != nil {
		if err := s.certs.Reload(); err != nil {
			return err
		}
	}
	old := s.cfg.Load()
	for _, key := range needRestart(old, cfg) {
		s.logNeedsRestart(key)
	}
	cfg = keepRouting(old, cfg)
	s.dkim.Store(table)
	s.verifier.Swap(users)
	s.guard.SetLimits(auth.LimitsFromConfig(cfg.Auth))
	s.cfg.Store(cfg)
	opts := s.sessionOptions(cfg)
	for _, l := range s.listeners {
		if err := l.srv.SetOptions(opts); err != nil {
			return err
		}
	}
	s.logReloaded(cfg.File)
	return nil
}

// needRestart lists the top-level settings that differ between old and new
// but are only read at start-up.
func needRestart(old, new *config.Config) []string {
	var keys []string
	check := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	check("hostname", old.Hostname, new.Hostname)
	check("state_dir", old.StateDir, new.StateDir)
	check("relay_domains", old.RelayDomains, new.RelayDomains)
	check("listener", old.Listeners, new.Listeners)
	check("transport", old.Transport, new.Transport)
	check("delivery", old.Delivery, new.Delivery)
	check("dns", old.DNS, new.DNS)
	check("tls", old.TLS, new.TLS)
	return keys
}

// keepRouting returns new with the start-up-only settings of old.
func keepRouting(old, new *config.Config) *config.Config {
	c := *new
	c.Hostname, c.StateDir, c.RelayDomains = old.Hostname, old.StateDir, old.RelayDomains
	c.Listeners, c.Transport, c.Delivery, c.DNS, c.TLS = old.Listeners, old.Transport, old.Delivery, old.DNS, old.TLS
	return &c
}
