package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"smarthost/config"
)

// Limits are the ban rules of the TOML table auth: MaxFailures failed
// logins from one client within FailureWindow ban it for BanTime. A zero
// field takes the config package's default (3, 20m, 24h).
type Limits struct {
	MaxFailures   int
	FailureWindow time.Duration
	BanTime       time.Duration
}

// LimitsFromConfig takes the limits from config.Auth (the TOML table auth).
func LimitsFromConfig(a config.Auth) Limits {
	return Limits{MaxFailures: a.MaxFailures, FailureWindow: a.FailureWindow.Duration, BanTime: a.BanTime.Duration}
}

func (l Limits) withDefaults() Limits {
	if l.MaxFailures <= 0 {
		l.MaxFailures = config.DefaultMaxFailures
	}
	if l.FailureWindow <= 0 {
		l.FailureWindow = config.DefaultFailureWindow
	}
	if l.BanTime <= 0 {
		l.BanTime = config.DefaultBanTime
	}
	return l
}

// DefaultMaxClients bounds the failure table of a [Guard]. An entry is a
// few hundred bytes, so the table stays around a megabyte under a spray
// from many addresses.
const DefaultMaxClients = 4096

// GuardOptions configure a [Guard].
type GuardOptions struct {
	Limits
	// MaxClients bounds the number of clients tracked at once. Default
	// [DefaultMaxClients].
	MaxClients int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Guard counts failed logins per client and bans clients that fail too
// often, in front of a [PasswordVerifier]. It is safe for concurrent use.
//
// A client is an IPv4 address, or an IPv6 /64: a single host or home
// network is given a whole /64 (RFC 6177, and SLAAC needs one), and
// privacy addresses (RFC 8981) let it pick a new address inside it at
// will, so counting per IPv6 address would give an attacker 2^64 fresh
// starts.
//
// Logins from one client are checked one at a time. Without that, a client
// opening many connections at once would get a guess on each before its
// first failure was counted; with it, a ban stops the queued attempts
// before they cost a hash, and one client cannot hold more than one hashing
// slot of the [Verifier].
//
// When the table is full, clients with neither a ban nor an attempt in
// progress are forgotten first, expired ones before ones with recent
// failures; if every entry is an active ban, a new client's failures are
// not counted (its logins are still checked). Bans therefore survive a
// spray, and memory stays bounded.
type Guard struct {
	verifier   PasswordVerifier
	now        func() time.Time
	maxClients int

	mu      sync.Mutex
	limits  Limits
	clients map[netip.Prefix]*client
}

// client is one entry of the failure table.
type client struct {
	turn     chan struct{} // holds a token while one login of this client is checked
	refs     int           // logins holding or waiting for turn
	failures []time.Time   // within the window, oldest first; at most MaxFailures
	banUntil time.Time
}

// NewGuard returns a guard that checks passwords with v.
func NewGuard(v PasswordVerifier, opts GuardOptions) *Guard {
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Guard{
		verifier:   v,
		now:        opts.Now,
		maxClients: opts.MaxClients,
		limits:     opts.Limits.withDefaults(),
		clients:    make(map[netip.Prefix]*client),
	}
}

// SetLimits changes the limits, for example after SIGHUP. Counts and bans
// already recorded stay; a shorter BanTime does not shorten a running ban.
func (g *Guard) SetLimits(l Limits) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limits = l.withDefaults()
}

// Attempt is one login to check.
type Attempt struct {
	ClientIP netip.Addr
	User     string
	Password string
}

// Result tells the session what to log about an attempt; auth does not log.
type Result struct {
	// Client is the counted unit: the address as a /32, or its IPv6 /64.
	Client netip.Prefix
	// Failures is the number of failures of Client within the window after
	// this attempt; it is reset by a success and by the start of a ban.
	Failures int
	// BanStarted is true when this failure banned Client: log auth_banned.
	BanStarted bool
	// BanUntil is when the ban ends, if BanStarted or the attempt was
	// refused with [ErrBanned].
	BanUntil time.Time
}

// Authenticate checks one login. It returns nil on success,
// [ErrBanned] if the client is banned (the password is not looked at: a
// flood from a banned client costs no hashing), [ErrInvalidCredentials] if
// the user or password is wrong, or a wrapped ctx error if ctx ended while
// the login waited. Only [ErrInvalidCredentials] counts as a failure; the
// failure that reaches MaxFailures is still answered with
// [ErrInvalidCredentials], with [Result.BanStarted] set, and later logins
// get [ErrBanned]. A success forgets the client's failures, as Dovecot's
// auth penalty does: a user who mistyped twice and then got it right starts
// again from zero. Attempts during a ban do not extend it, so a client that
// keeps retrying with a stale password gets in once the password is fixed
// and the ban is over.
func (g *Guard) Authenticate(ctx context.Context, a Attempt) (Result, error) {
	key := clientKey(a.ClientIP)
	res := Result{Client: key}

	g.mu.Lock()
	now := g.now()
	c := g.clients[key]
	if c != nil && c.banned(now) {
		res.BanUntil = c.banUntil
		g.mu.Unlock()
		return res, ErrBanned
	}
	if c == nil {
		c = g.newClientLocked(key, now)
	}
	if c != nil {
		c.refs++
	}
	g.mu.Unlock()
	if c == nil {
		// The table is full of bans: check the password, count nothing.
		return res, g.verifier.Verify(ctx, a.User, a.Password)
	}
	defer g.release(key, c)

	select {
	case c.turn <- struct{}{}:
		defer func() { <-c.turn }()
	case <-ctx.Done():
		return res, fmt.Errorf("auth: waiting for an earlier login of %s: %w", key, ctx.Err())
	}

	// An earlier login of this client may have started a ban while this
	// one waited.
	g.mu.Lock()
	if now := g.now(); c.banned(now) {
		res.BanUntil = c.banUntil
		g.mu.Unlock()
		return res, ErrBanned
	}
	g.mu.Unlock()

	err := g.verifier.Verify(ctx, a.User, a.Password)

	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err == nil:
		c.failures = c.failures[:0]
	case errors.Is(err, ErrInvalidCredentials):
		now := g.now()
		c.fail(now, g.limits)
		res.Failures = len(c.failures)
		if c.banned(now) {
			res.BanStarted, res.BanUntil = true, c.banUntil
		}
	}
	return res, err
}

// Banned reports whether ip's client is banned and until when. The
// listener calls it on connect, to refuse a banned client before the
// greeting, as fail2ban's firewall rule would.
func (g *Guard) Banned(ip netip.Addr) (until time.Time, banned bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[clientKey(ip)]
	if c == nil || !c.banned(g.now()) {
		return time.Time{}, false
	}
	return c.banUntil, true
}

// Len is the number of clients in the failure table.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.clients)
}

// clientKey maps an address to the unit failures are counted in.
func clientKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, err := ip.Prefix(64)
	if err != nil {
		// Not an IP address at all; such clients share one entry.
		return netip.Prefix{}
	}
	return p
}

// newClientLocked adds an entry for key, making room if the table is full,
// or returns nil if every entry is a ban or busy.
func (g *Guard) newClientLocked(key netip.Prefix, now time.Time) *client {
	if len(g.clients) >= g.maxClients {
		g.evictLocked(now, false)
	}
	if len(g.clients) >= g.maxClients {
		g.evictLocked(now, true)
	}
	if len(g.clients) >= g.maxClients {
		return nil
	}
	c := &client{turn: make(chan struct{}, 1)}
	g.clients[key] = c
	return c
}

// evictLocked forgets idle entries: those with no recent failures, or with
// dropCounts, every entry that is not banned.
func (g *Guard) evictLocked(now time.Time, dropCounts bool) {
	for k, c := range g.clients {
		if c.refs > 0 || c.banned(now) {
			continue
		}
		c.expire(now, g.limits.FailureWindow)
		if dropCounts || len(c.failures) == 0 {
			delete(g.clients, k)
		}
	}
}

// release ends one login of c and drops the entry if nothing is left in it.
func (g *Guard) release(key netip.Prefix, c *client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c.refs--
	if c.refs == 0 && len(c.failures) == 0 && !c.banned(g.now()) && g.clients[key] == c {
		delete(g.clients, key)
	}
}

func (c *client) banned(now time.Time) bool { return now.Before(c.banUntil) }

// expire drops failures older than the window.
func (c *client) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(c.failures) && now.Sub(c.failures[i]) >= window {
		i++
	}
	c.failures = append(c.failures[:0], c.failures[i:]...)
}

// fail records a failure at now and starts a ban when the failures within
// the window reach l.MaxFailures.
func (c *client) fail(now time.Time, l Limits) {
	c.expire(now, l.FailureWindow)
	c.failures = append(c.failures, now)
	if len(c.failures) >= l.MaxFailures {
		c.banUntil = now.Add(l.BanTime)
		c.failures = c.failures[:0]
	}
}
