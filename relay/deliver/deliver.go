package deliver

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/queue/mlog"
	"smarthost/relay/route"
)

// DefaultIdleTimeout is how long an idle connection waits for the next
// message to the same host (Postfix smtp_connection_cache_time_limit).
const DefaultIdleTimeout = 2 * time.Second

// Limits taken from Postfix, where it has them.
const (
	// maxAddresses bounds the addresses tried per next hop and attempt
	// (Postfix smtp_mx_address_limit).
	maxAddresses = 5
	// maxConnAge bounds how long one connection is reused (Postfix
	// smtp_connection_reuse_time_limit).
	maxConnAge = 300 * time.Second
	// quitTimeout bounds the wait for the reply to QUIT.
	quitTimeout = 10 * time.Second
)

// Deliverer is the outbound SMTP client; it implements [queue.Deliverer].
// Build it with [New], set the optional fields before the first call to
// Deliver, and call [Deliverer.Close] when done with it (for example after
// a configuration reload has built a new one). Deliver is safe for
// concurrent use.
type Deliverer struct {
	// Dial opens TCP connections; addr is "ip:port". Default: a
	// net.Dialer. Tests map MX addresses on port 25 to loopback sinks.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies server certificates under the "verify" policy;
	// nil means the system's roots.
	RootCAs *x509.CertPool
	// Now is the clock used to expire cached connections. Default
	// time.Now.
	Now func() time.Time
	// IdleTimeout is how long a connection is kept for the next message
	// to the same host. Default [DefaultIdleTimeout]; negative turns
	// connection reuse off.
	IdleTimeout time.Duration

	router         *route.Router
	log            *slog.Logger
	hostname       string
	policy         config.DeliveryTLS
	policies       map[string]config.DeliveryTLS
	connectTimeout time.Duration
	commandTimeout time.Duration
	destLimit      int

	initOnce sync.Once
	pool     *pool
	limiter  *limiter
	bg       sync.WaitGroup // QUITs of connections not kept
	connID   atomic.Uint64
	buffers  sync.Pool // *dataBuffers for transfers
}

var _ queue.Deliverer = (*Deliverer)(nil)

// New returns a Deliverer that routes with router and takes its EHLO name
// (hostname), TLS policy (delivery.tls, delivery.tls_policy), timeouts and
// per-destination concurrency from cfg, which must be validated. It logs
// per-command traces at Debug and tls_fallback events at Info to logger.
func New(cfg *config.Config, router *route.Router, logger *slog.Logger) *Deliverer {
	policies := make(map[string]config.DeliveryTLS, len(cfg.Delivery.TLSPolicy))
	for k, v := range cfg.Delivery.TLSPolicy {
		policies[strings.ToLower(strings.TrimSuffix(k, "."))] = v
	}
	policy := cfg.Delivery.TLS
	if policy == "" {
		policy = config.DeliveryTLSMay
	}
	return &Deliverer{
		router:         router,
		log:            logger,
		hostname:       cfg.Hostname,
		policy:         policy,
		policies:       policies,
		connectTimeout: orDefault(cfg.Delivery.ConnectTimeout.Duration, config.DefaultConnectTimeout),
		commandTimeout: orDefault(cfg.Delivery.CommandTimeout.Duration, config.DefaultCommandTimeout),
		destLimit:      max(cfg.Delivery.DestinationConcurrency, 1),
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (d *Deliverer) init() {
	d.initOnce.Do(func() {
		idle := d.IdleTimeout
		if idle == 0 {
			idle = DefaultIdleTimeout
		}
		maxIdle := d.destLimit
		if idle < 0 {
			maxIdle = 0
		}
		d.pool = newPool(maxIdle, idle, maxConnAge, d.now, d.quit)
		d.limiter = newLimiter(d.destLimit)
	})
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.Dial != nil {
		return d.Dial(ctx, network, addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// Close closes the idle connections, each with QUIT, and waits for
// connections being closed. Deliveries still running finish; connections
// they free afterwards are closed rather than kept.
func (d *Deliverer) Close() error {
	d.init()
	d.pool.close()
	d.bg.Wait()
	return nil
}

// Deliver makes one attempt for dl's recipients and returns one Result per
// recipient. Recipients are grouped by next hop (and TLS policy); each
// group travels in one SMTP transaction — one MAIL FROM, a RCPT TO per
// recipient, one DATA — to the first host of the next hop that can be
// reached. Groups are delivered one after the other; the queue bounds how
// many Deliver calls run at once, and Deliver bounds the connections per
// next hop to delivery.destination_concurrency.
func (d *Deliverer) Deliver(ctx context.Context, dl *queue.Delivery) (results []queue.Result) {
	d.init()
	defer func() {
		// A panic must not lose the contract's one Result per recipient.
		if v := recover(); v != nil {
			d.logPanic(dl.ID, v, debug.Stack())
			results = d.completeAfterPanic(dl, results, v)
		}
	}()
	for _, g := range d.groups(dl) {
		results = append(results, d.deliverGroup(ctx, dl, g)...)
	}
	return results
}

func (d *Deliverer) completeAfterPanic(dl *queue.Delivery, results []queue.Result, v any) []queue.Result {
	done := make(map[string]bool, len(results))
	for _, r := range results {
		done[r.Recipient] = true
	}
	e := temporary("deliver", "4.3.0", fmt.Errorf("internal error: %v", v))
	for _, rcpt := range dl.Recipients {
		if !done[rcpt] {
			results = append(results, attempt{}.failed(rcpt, e))
		}
	}
	return results
}

// group is the recipients that share a next hop and a TLS policy, and so
// one SMTP transaction.
type group struct {
	hop    config.NextHop
	policy config.DeliveryTLS
	rcpts  []string
}

func (d *Deliverer) groups(dl *queue.Delivery) []*group {
	var out []*group
	index := map[string]*group{}
	for _, rcpt := range dl.Recipients {
		hop := d.router.Route(rcpt)
		policy := d.policyFor(rcpt, hop)
		key := hop.String() + " " + string(policy)
		g := index[key]
		if g == nil {
			g = &group{hop: hop, policy: policy}
			index[key] = g
			out = append(out, g)
		}
		g.rcpts = append(g.rcpts, rcpt)
	}
	return out
}

// policyFor applies delivery.tls_policy, which is keyed by recipient
// domain or next-hop host (".example.com" keys match subdomains). When
// both match, the stricter policy wins, because one transaction must
// satisfy both; when neither does, delivery.tls applies.
func (d *Deliverer) policyFor(rcpt string, hop config.NextHop) config.DeliveryTLS {
	best, found := d.policy, false
	domain := rcpt[strings.LastIndexByte(rcpt, '@')+1:]
	for _, name := range []string{domain, hop.Host} {
		p, ok := d.lookupPolicy(strings.ToLower(strings.TrimSuffix(name, ".")))
		if ok && (!found || strictness(p) > strictness(best)) {
			best, found = p, true
		}
	}
	return best
}

func (d *Deliverer) lookupPolicy(name string) (config.DeliveryTLS, bool) {
	if name == "" {
		return "", false
	}
	if p, ok := d.policies[name]; ok {
		return p, true
	}
	for n := name; ; {
		i := strings.IndexByte(n, '.')
		if i < 0 {
			return "", false
		}
		n = n[i+1:]
		if p, ok := d.policies["."+n]; ok {
			return p, true
		}
	}
}

func strictness(p config.DeliveryTLS) int {
	switch p {
	case config.DeliveryTLSVerify:
		return 2
	case config.DeliveryTLSEncrypt:
		return 1
	}
	return 0
}

// deliverGroup is one attempt for one group:
//
//  1. resolve the next hop into hosts (route.Hosts);
//  2. wait for a slot of the destination's concurrency;
//  3. reuse a cached connection to any of the hosts, after RSET;
//  4. else connect to each address in turn, best MX first, moving on
//     after a connection failure, a greeting or EHLO refusal (4xx, and
//     5xx too: RFC 5321 §5.1 says to try the next MX) or a TLS failure
//     the policy does not allow;
//  5. run the transaction on the first connection that is ready.
//
// When no host can be reached, the failure is temporary unless every host
// failed permanently.
func (d *Deliverer) deliverGroup(ctx context.Context, dl *queue.Delivery, g *group) []queue.Result {
	a := attempt{nextHop: g.hop.String()}
	hosts, err := d.router.Hosts(ctx, g.hop)
	if err != nil {
		return a.failAll(g.rcpts, fromRoute(err))
	}
	release, err := d.limiter.acquire(ctx, a.nextHop)
	if err != nil {
		return a.failAll(g.rcpts, temporary("connect", "4.4.1", fmt.Errorf("waiting for a connection to %s: %w", a.nextHop, err)))
	}
	defer release()

	mode := tlsMode{policy: g.policy, implicit: g.hop.Transport == config.TransportSMTPS}
	for _, h := range hosts {
		for c := d.pool.get(poolKey{h.Name, h.Port, mode}); c != nil; c = d.pool.get(poolKey{h.Name, h.Port, mode}) {
			c.queueID = dl.ID
			if d.reuse(ctx, c) {
				return d.run(ctx, c, dl, g, a)
			}
		}
	}

	var fail *Error
	failed := a
	tried := 0
	for _, h := range hosts {
		for _, ip := range h.Addrs {
			if tried == maxAddresses || ctx.Err() != nil {
				break
			}
			tried++
			c, err := d.connect(ctx, dl.ID, h, ip, mode)
			if err == nil {
				return d.run(ctx, c, dl, g, a)
			}
			// Keep a temporary failure over a permanent one: another
			// attempt may reach the host that was only unreachable.
			if fail == nil || fail.Permanent || !err.Permanent {
				fail, failed = err, a
				failed.mx = hostPort(h, ip)
				if err.Code != 0 {
					failed.remoteMTA = h.Name
				}
			}
		}
	}
	if fail == nil {
		fail = temporary("connect", "4.4.1", fmt.Errorf("no host of %s tried: %w", a.nextHop, ctx.Err()))
	}
	return failed.failAll(g.rcpts, fail)
}

// reuse readies a cached connection for a new transaction: RSET, which
// also proves the connection still works (Postfix does the same), and
// EHLO, which go-smtp requires after RSET.
func (d *Deliverer) reuse(ctx context.Context, c *conn) bool {
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	defer stop()
	c.client.CommandTimeout = d.commandTimeout
	err := c.client.Reset()
	if err == nil {
		err = c.client.Hello(d.hostname)
	}
	d.debug(c, "rset", mlog.Reply, outcome(c, err))
	if err != nil {
		c.raw.Close()
		return false
	}
	return true
}

// run does the transaction on c and then keeps c for reuse or closes it.
// Cancelling ctx closes the connection, which ends any wait at once.
func (d *Deliverer) run(ctx context.Context, c *conn, dl *queue.Delivery, g *group, a attempt) []queue.Result {
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	results, healthy := d.transaction(c, dl, g, a)
	if !stop() {
		healthy = false
	}
	switch {
	case !healthy:
		c.raw.Close()
	case d.pool.put(c):
	default:
		d.bg.Go(func() { d.quit(c) })
	}
	return results
}

func (a attempt) failAll(rcpts []string, e *Error) []queue.Result {
	out := make([]queue.Result, 0, len(rcpts))
	for _, r := range rcpts {
		out = append(out, a.failed(r, e))
	}
	return out
}

func hostPort(h route.Host, ip netip.Addr) string {
	return h.Name + "[" + ip.String() + "]:" + strconv.Itoa(h.Port)
}
