package recipients

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"smarthost/relay/deliver"
)

// Defaults of [Options]; see the package documentation for the reasons.
const (
	// DefaultPositiveRefresh: an accepted recipient is re-probed, in the
	// background, when mail comes for it after this long. Postfix:
	// address_verify_positive_refresh_time, 7d.
	DefaultPositiveRefresh = time.Hour
	// DefaultPositiveExpire: an accepted recipient whose refresh probes
	// keep failing temporarily is accepted for this long after the last
	// answer. Postfix: address_verify_positive_expire_time, 31d.
	DefaultPositiveExpire = 7 * 24 * time.Hour
	// DefaultNegativeTTL: a refused recipient is refused without a new
	// probe for this long. Postfix: address_verify_negative_expire_time,
	// 3d; the issue asks for a short one.
	DefaultNegativeTTL = 10 * time.Minute
	// DefaultWait bounds how long Check waits for a probe. Postfix:
	// address_verify_poll_count × address_verify_poll_delay, 3 × 3s.
	DefaultWait = 9 * time.Second
	// DefaultProbeTimeout bounds one probe, which goes on after Check
	// stopped waiting.
	DefaultProbeTimeout = time.Minute
	// DefaultMaxEntries bounds the cache.
	DefaultMaxEntries = 10000
	// DefaultMaxProbes bounds the probes in progress at once, so that a
	// client sending many made-up recipients cannot pile them up.
	DefaultMaxProbes = 100
)

// Verdict is what the session does with a recipient.
type Verdict string

const (
	// Accept: go on with the recipient.
	Accept Verdict = "accept"
	// RejectUnknown: the recipient does not exist; refuse it with
	// 550 5.1.1.
	RejectUnknown Verdict = "reject_unknown"
	// TempFail: whether the recipient exists is not known now; refuse it
	// with 450 4.1.1 so the client retries. Never 550.
	TempFail Verdict = "tempfail"
)

// Valid reports whether v is one of the defined verdicts.
func (v Verdict) Valid() bool {
	switch v {
	case Accept, RejectUnknown, TempFail:
		return true
	}
	return false
}

// Result is the outcome of [Checker.Check].
type Result struct {
	// Verdict is what to do.
	Verdict Verdict
	// Reason says why, for the log only, never for the client: "not in
	// relay_recipients", the next hop's reply to the probe, or why the
	// probe failed. "" when no check applies.
	Reason string
	// Cached is true when the answer came from the probe cache.
	Cached bool
}

// Prober asks a recipient's next hop about the recipient;
// *deliver.Deliverer is one.
type Prober interface {
	Probe(ctx context.Context, rcpt string) deliver.ProbeResult
}

var _ Prober = (*deliver.Deliverer)(nil)

// Options configure [New]. Zero durations and bounds take the defaults.
type Options struct {
	// Table is the recipient table; nil or empty does not restrict.
	Table *Table
	// Prober verifies recipients (verify_recipients); nil turns
	// verification off.
	Prober Prober
	// Now is the clock for the cache. Default time.Now.
	Now func() time.Time
	// PositiveRefresh is how long an accepted recipient's answer is
	// fresh. Default [DefaultPositiveRefresh].
	PositiveRefresh time.Duration
	// PositiveExpire is how long an accepted recipient's answer is used
	// at all; at least PositiveRefresh. Default [DefaultPositiveExpire].
	PositiveExpire time.Duration
	// NegativeTTL is how long a refused recipient's answer is used.
	// Default [DefaultNegativeTTL].
	NegativeTTL time.Duration
	// Wait bounds how long Check waits for a probe. Default
	// [DefaultWait].
	Wait time.Duration
	// ProbeTimeout bounds one probe. Default [DefaultProbeTimeout].
	ProbeTimeout time.Duration
	// MaxEntries bounds the cache; the least recently used answer goes
	// first. Default [DefaultMaxEntries].
	MaxEntries int
	// MaxProbes bounds the probes in progress. Default
	// [DefaultMaxProbes].
	MaxProbes int
}

// Checker decides about recipients. Build it with [New] and call
// [Checker.Close] when done (after a reload has built a new one, for
// example). Check is safe for concurrent use.
type Checker struct {
	opts   Options
	base   context.Context // the context of probes; cancelled by Close
	cancel context.CancelFunc
	probes sync.WaitGroup

	mu      sync.Mutex
	cache   *cache
	flights map[string]*flight // probes in progress, by cache key
	closed  bool
}

// flight is one probe in progress; done is closed when res is set.
type flight struct {
	done chan struct{}
	res  deliver.ProbeResult
}

// New returns a Checker.
func New(opts Options) *Checker {
	opts.PositiveRefresh = orDefault(opts.PositiveRefresh, DefaultPositiveRefresh)
	opts.PositiveExpire = max(orDefault(opts.PositiveExpire, DefaultPositiveExpire), opts.PositiveRefresh)
	opts.NegativeTTL = orDefault(opts.NegativeTTL, DefaultNegativeTTL)
	opts.Wait = orDefault(opts.Wait, DefaultWait)
	opts.ProbeTimeout = orDefault(opts.ProbeTimeout, DefaultProbeTimeout)
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxProbes <= 0 {
		opts.MaxProbes = DefaultMaxProbes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	base, cancel := context.WithCancel(context.Background())
	return &Checker{
		opts:    opts,
		base:    base,
		cancel:  cancel,
		cache:   newCache(opts.MaxEntries),
		flights: map[string]*flight{},
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Check decides about rcpt (local@domain, a recipient of a relay domain):
// the table first, then, if it passes and verification is on, the probe
// cache or a probe. It waits for a probe until the probe ends, Wait has
// passed or ctx is done, whichever is first; in the latter two cases the
// verdict is TempFail and the probe goes on in the background, its answer
// cached for the client's retry.
//
// With neither a table nor a prober, Check accepts every recipient.
func (c *Checker) Check(ctx context.Context, rcpt string) Result {
	if c.opts.Table.Configured() && !c.opts.Table.Contains(rcpt) {
		return Result{Verdict: RejectUnknown, Reason: "not in relay_recipients"}
	}
	if c.opts.Prober == nil {
		return Result{Verdict: Accept}
	}
	key := strings.ToLower(rcpt)

	c.mu.Lock()
	now := c.opts.Now()
	if a := c.cache.get(key, now); a != nil {
		res := Result{Verdict: RejectUnknown, Reason: a.reason, Cached: true}
		if a.accepted {
			res.Verdict = Accept
			if !now.Before(a.refreshAt) {
				// Stale: answer from the cache now, refresh for
				// later. If no probe can start, the next Check
				// tries again.
				c.start(key, rcpt)
			}
		}
		c.mu.Unlock()
		return res
	}
	f := c.start(key, rcpt)
	c.mu.Unlock()
	if f == nil {
		return Result{Verdict: TempFail, Reason: c.whyNoProbe()}
	}

	timer := time.NewTimer(c.opts.Wait)
	defer timer.Stop()
	select {
	case <-f.done:
		return fromProbe(f.res)
	case <-timer.C:
		return Result{Verdict: TempFail, Reason: fmt.Sprintf("probe still in progress after %v", c.opts.Wait)}
	case <-ctx.Done():
		return Result{Verdict: TempFail, Reason: fmt.Sprintf("probe still in progress: %v", ctx.Err())}
	}
}

func (c *Checker) whyNoProbe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "verification stopped"
	}
	return fmt.Sprintf("too many probes in progress (%d)", c.opts.MaxProbes)
}

// fromProbe maps a probe's answer to a verdict.
func fromProbe(p deliver.ProbeResult) Result {
	switch p.Status {
	case deliver.ProbeAccepted:
		return Result{Verdict: Accept, Reason: "accepted by " + p.MX}
	case deliver.ProbeRejected:
		return Result{Verdict: RejectUnknown, Reason: probeReason(p)}
	}
	return Result{Verdict: TempFail, Reason: probeReason(p)}
}

func probeReason(p deliver.ProbeResult) string {
	if p.Err == nil {
		return "probe: " + string(p.Status)
	}
	return p.Err.Error()
}

// start returns the probe in progress for key, or starts one for rcpt.
// It returns nil when the Checker is closed or MaxProbes are running.
// The caller holds c.mu.
func (c *Checker) start(key, rcpt string) *flight {
	if f := c.flights[key]; f != nil {
		return f
	}
	if c.closed || len(c.flights) >= c.opts.MaxProbes {
		return nil
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.probes.Go(func() { c.run(key, rcpt, f) })
	return f
}

// run is one probe, in its own goroutine: it caches the answer and
// wakes the waiters.
func (c *Checker) run(key, rcpt string, f *flight) {
	res := deliver.ProbeResult{Status: deliver.ProbeUndetermined}
	defer func() {
		if v := recover(); v != nil {
			// A broken Prober must not leave waiters hanging or the
			// flight in place for ever.
			res = deliver.ProbeResult{Status: deliver.ProbeUndetermined, Err: &deliver.Error{
				Command: "probe", Enhanced: "4.3.0", Err: fmt.Errorf("internal error: %v", v)}}
		}
		c.finish(key, f, res)
	}()
	ctx, cancel := context.WithTimeout(c.base, c.opts.ProbeTimeout)
	defer cancel()
	res = c.opts.Prober.Probe(ctx, rcpt)
}

func (c *Checker) finish(key string, f *flight, res deliver.ProbeResult) {
	c.mu.Lock()
	now := c.opts.Now()
	switch res.Status {
	case deliver.ProbeAccepted:
		c.cache.put(&answer{addr: key, accepted: true, reason: "accepted by " + res.MX,
			refreshAt: now.Add(c.opts.PositiveRefresh), expireAt: now.Add(c.opts.PositiveExpire)})
	case deliver.ProbeRejected:
		c.cache.put(&answer{addr: key, reason: probeReason(res), expireAt: now.Add(c.opts.NegativeTTL)})
	}
	// An undetermined answer is not cached, and leaves a stale positive
	// answer in place.
	delete(c.flights, key)
	c.mu.Unlock()
	f.res = res
	close(f.done)
}

// Close cancels the probes in progress and waits for them to end. Later
// Checks still use the table and the cache, but start no probe: what
// would need one is TempFail.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.probes.Wait()
}
