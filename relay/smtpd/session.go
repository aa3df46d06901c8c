package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/queue/mlog"
	"smarthost/relay/address"
	"smarthost/relay/dnsbl"
	"smarthost/relay/reply"
)

// session is one client's SMTP dialogue from HELO/EHLO on (go-smtp makes a
// new one after STARTTLS). go-smtp calls its methods from the connection's
// goroutine only, so it needs no locking.
type session struct {
	srv      *Server
	o        *Options
	conn     *smtp.Conn
	log      *slog.Logger
	connID   uint64
	clientIP netip.Addr
	tls      *tls.ConnectionState

	// mu guards user and tx: go-smtp runs Data in a goroutine of its own
	// for BDAT, and calls Reset from the connection's goroutine (RSET or
	// EHLO between chunks) while that Data may still run. (go-smtp v0.25.1
	// itself races there on its result channel: the aborted message's
	// result can reach the next BDAT transaction, whose client then sees
	// a 451 and retries — a duplicate at worst, never a loss.)
	mu   sync.Mutex
	user string      // SASL user once AUTH succeeded
	tx   transaction // MAIL … DATA; cleared by Reset

	blocklist *dnsbl.Result // the client's DNSBL result, once asked
}

// transaction is the envelope being built by MAIL and RCPT. Data works on
// a copy taken when it starts.
type transaction struct {
	from     *address.Address
	mailOpts smtp.MailOptions
	rcpts    []string
	seen     map[string]bool
	user     string
	helo     string
}

// snapshot returns a copy of the transaction for Data.
func (s *session) snapshot() transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.tx
	tx.rcpts = append([]string(nil), s.tx.rcpts...)
	tx.seen = nil
	tx.user = s.user
	tx.helo = s.conn.Hostname()
	return tx
}

func (s *session) authUser() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

// trusted reports whether the client is in trusted_networks.
func (s *session) trusted() bool {
	for _, p := range s.o.TrustedNetworks {
		if p.Contains(s.clientIP) {
			return true
		}
	}
	return false
}

// mayRelay reports whether this client may send mail anywhere: on a
// submission listener, an authenticated user or a trusted network.
func (s *session) mayRelay() bool {
	return s.srv.role == config.RoleSubmission && (s.authUser() != "" || s.trusted())
}

func (s *session) tlsSummary() string {
	if s.tls == nil {
		return "none"
	}
	return tlsVersionName(s.tls.Version) + " " + tls.CipherSuiteName(s.tls.CipherSuite)
}

// Reset implements smtp.Session.
func (s *session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tx = transaction{}
}

// Logout implements smtp.Session.
func (s *session) Logout() error { return nil }

// AuthMechanisms implements smtp.AuthSession. AUTH is offered only on
// submission listeners and only over TLS: PLAIN and LOGIN send the password
// in the clear (RFC 4954 §4).
func (s *session) AuthMechanisms() []string {
	if s.srv.role != config.RoleSubmission || s.o.Auth == nil || s.tls == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession. The server lets go-smtp pass AUTH on
// plain text through to here (AllowInsecureAuth) so that the refusal is
// RFC 4954's 538 5.7.11 rather than go-smtp's own reply; go-smtp has
// already refused a second AUTH after a successful one.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.srv.role != config.RoleSubmission || s.o.Auth == nil {
		s.logRejected("", "auth", reply.AuthNotOffered, "AUTH on a listener without AUTH")
		return nil, reply.AuthNotOffered.SMTP()
	}
	if s.tls == nil {
		s.logRejected("", "auth", reply.EncryptionRequired, "AUTH before TLS")
		return nil, reply.EncryptionRequired.SMTP()
	}
	// Check the ban before anything else, so a banned client costs nothing.
	if s.o.Auth.Banned(s.clientIP) {
		s.logAuthFailed(mech, "", reply.AuthBanned)
		return nil, reply.AuthBanned.SMTP()
	}
	check := func(username, password string) error {
		res := s.o.Auth.Authenticate(s.clientIP, username, password)
		if res.Err == nil {
			s.mu.Lock()
			s.user = username
			s.mu.Unlock()
			s.log.Debug("authenticated", slog.String(mlog.User, username), slog.String(mlog.Mechanism, mech))
			return nil
		}
		r := reply.Classify(res.Err)
		s.logAuthFailed(mech, username, r)
		if res.NewBan {
			s.logAuthBanned(res.BanUntil)
		}
		return r.SMTP()
	}
	switch mech {
	case sasl.Plain:
		return auth.NewPlainServer(check), nil
	case sasl.Login:
		return auth.NewLoginServer(check), nil
	}
	s.logRejected("", "auth", reply.AuthMechanism, "unsupported mechanism "+mech)
	return nil, reply.AuthMechanism.SMTP()
}

// Mail implements smtp.Session.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	// go-smtp asks NewSession, which checks the HELO argument, only at the
	// first HELO/EHLO; a repeated one (RFC 5321 §4.1.4 allows it) changes
	// Conn.Hostname without us, so check it again before it can reach a
	// Received header.
	if !validHelo(s.conn.Hostname()) {
		return s.reject("mail", reply.BadHelo, "invalid argument of a repeated HELO/EHLO")
	}
	if s.srv.role == config.RoleSubmission && !s.mayRelay() {
		return s.reject("mail", reply.AuthRequired, "MAIL without AUTH from an untrusted network", slog.String(mlog.From, from))
	}
	var a address.Address
	if from != "" {
		var err error
		a, err = address.Parse(from)
		if err != nil {
			r := reply.BadSenderSyntax
			if errors.Is(err, address.ErrTooLong) {
				r = reply.AddressTooLong
			}
			return s.reject("mail", r, err.Error(), slog.String(mlog.From, from))
		}
	}
	if opts == nil {
		opts = &smtp.MailOptions{}
	}
	if !a.IsASCII() && !opts.UTF8 {
		return s.reject("mail", reply.UTF8Required, "non-ASCII sender without SMTPUTF8", slog.String(mlog.From, from))
	}
	user := s.authUser()
	if user != "" && !a.IsNull() && s.o.Senders != nil && !s.o.Senders.Allowed(user, a.String()) {
		return s.reject("mail", reply.SenderNotOwned, "MAIL FROM not allowed for user "+user, slog.String(mlog.From, from))
	}
	s.mu.Lock()
	s.tx.from = &a
	s.tx.mailOpts = *opts
	s.mu.Unlock()
	return nil
}

// Rcpt implements smtp.Session.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	a, err := address.Parse(to)
	if err != nil {
		r := reply.BadRecipientSyntax
		if errors.Is(err, address.ErrTooLong) {
			r = reply.AddressTooLong
		}
		return s.reject("rcpt", r, err.Error(), slog.String(mlog.Rcpt, to))
	}
	s.mu.Lock()
	utf8 := s.tx.mailOpts.UTF8
	s.mu.Unlock()
	if !a.IsASCII() && !utf8 {
		return s.reject("rcpt", reply.UTF8Required, "non-ASCII recipient without SMTPUTF8", slog.String(mlog.Rcpt, to))
	}
	// Sender-specified routing and address literals are refused for every
	// client and role: a downstream MTA (the home server) might act on
	// user%host or host!user and relay on our behalf, and a literal skips
	// MX routing. Postfix refuses the first for untrusted clients
	// (allow_untrusted_routing = no); we refuse both for everyone, since
	// no legitimate submission needs them.
	switch {
	case a.HasRouting():
		return s.reject("rcpt", reply.RelayDenied, "sender-specified routing in recipient", slog.String(mlog.Rcpt, to))
	case a.IsLiteral():
		return s.reject("rcpt", reply.RelayDenied, "address literal recipient", slog.String(mlog.Rcpt, to))
	}
	switch s.srv.role {
	case config.RoleMX:
		if !s.o.Destinations.IsRelayDestination(a.String()) {
			return s.reject("rcpt", reply.RelayDenied, "recipient domain is not a relay domain", slog.String(mlog.Rcpt, to))
		}
		if err := s.mxRecipientPolicy(a); err != nil {
			return err
		}
	case config.RoleSubmission:
		// MAIL already required AUTH or a trusted network.
		if !s.mayRelay() {
			return s.reject("rcpt", reply.AuthRequired, "RCPT without AUTH", slog.String(mlog.Rcpt, to))
		}
	}
	w := a.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx.seen == nil {
		s.tx.seen = make(map[string]bool)
	}
	if !s.tx.seen[w] {
		s.tx.seen[w] = true
		s.tx.rcpts = append(s.tx.rcpts, w)
	}
	return nil
}

// reject logs a refused command and returns its reply for go-smtp.
func (s *session) reject(stage string, r reply.Reply, reason string, extra ...slog.Attr) error {
	s.logRejected("", stage, r, reason, extra...)
	return r.SMTP()
}

// fromString is the envelope sender for logs and the queue.
func (tx transaction) fromString() string {
	if tx.from == nil {
		return ""
	}
	return tx.from.String()
}

func (s *session) String() string {
	return fmt.Sprintf("session %d from %s", s.connID, s.clientIP)
}
