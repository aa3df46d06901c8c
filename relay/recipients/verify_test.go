package recipients

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"smarthost/relay/deliver"
)

// clock is a fake clock the tests move by hand. When ticks is set, every
// reading is reported on it, which tells a test that a Check got as far
// as its cache lookup.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	ticks chan struct{}
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ticks != nil {
		c.ticks <- struct{}{}
	}
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// prober is a fake next hop: it answers by the recipient's local part
// (gone: refused, busy: undetermined, panic: panics, else accepted), and
// can be held back with a gate.
type prober struct {
	mu      sync.Mutex
	calls   map[string]int
	answers map[string]deliver.ProbeStatus // overrides, by address
	gate    chan struct{}                  // when set, Probe waits for it to close (or ctx)
	started chan string                    // when set, receives each address probed
}

func newProber() *prober {
	return &prober{calls: map[string]int{}, answers: map[string]deliver.ProbeStatus{}}
}

func (p *prober) Probe(ctx context.Context, rcpt string) deliver.ProbeResult {
	p.mu.Lock()
	p.calls[strings.ToLower(rcpt)]++
	gate, started, status := p.gate, p.started, p.answers[rcpt]
	p.mu.Unlock()
	if started != nil {
		started <- rcpt
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return deliver.ProbeResult{Status: deliver.ProbeUndetermined, Err: &deliver.Error{Command: "connect", Enhanced: "4.4.1", Err: ctx.Err()}}
		}
	}
	local := strings.ToLower(rcpt[:strings.IndexByte(rcpt, '@')])
	switch {
	case status != "":
	case local == "gone":
		status = deliver.ProbeRejected
	case local == "busy":
		status = deliver.ProbeUndetermined
	case local == "panic":
		panic("prober: broken")
	default:
		status = deliver.ProbeAccepted
	}
	switch status {
	case deliver.ProbeRejected:
		return deliver.ProbeResult{Status: status, MX: "home.test[192.0.2.1]:25", Err: &deliver.Error{Permanent: true, Code: 550, Enhanced: "5.1.1", Command: "RCPT TO", Line: "550 5.1.1 No such user"}}
	case deliver.ProbeUndetermined:
		return deliver.ProbeResult{Status: status, MX: "home.test[192.0.2.1]:25", Err: &deliver.Error{Code: 450, Enhanced: "4.2.1", Command: "RCPT TO", Line: "450 4.2.1 Try later"}}
	}
	return deliver.ProbeResult{Status: status, MX: "home.test[192.0.2.1]:25"}
}

func (p *prober) Calls(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[addr]
}

func (p *prober) set(addr string, s deliver.ProbeStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[addr] = s
}

func (p *prober) setGate(gate chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = gate
}

func newChecker(t *testing.T, opts Options) *Checker {
	t.Helper()
	c := New(opts)
	t.Cleanup(c.Close)
	return c
}

// settle waits until the probe in progress for addr, if any, has ended
// and its answer is cached.
func settle(t *testing.T, c *Checker, addr string) {
	t.Helper()
	c.mu.Lock()
	f := c.flights[addr]
	c.mu.Unlock()
	if f == nil {
		return
	}
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the probe of %s did not end", addr)
	}
}

func TestCheck_ProbeVerdicts(t *testing.T) {
	t.Parallel()
	c := newChecker(t, Options{Prober: newProber(), Now: newClock().Now})
	tests := []struct {
		rcpt string
		want Result
	}{
		{"alice@example.test", Result{Verdict: Accept, Reason: "accepted by home.test[192.0.2.1]:25"}},
		{"gone@example.test", Result{Verdict: RejectUnknown, Reason: "deliver: RCPT TO: 550 5.1.1 No such user"}},
		{"busy@example.test", Result{Verdict: TempFail, Reason: "deliver: RCPT TO: 450 4.2.1 Try later"}},
		{"panic@example.test", Result{Verdict: TempFail, Reason: "deliver: probe: internal error: prober: broken"}},
	}
	for _, tt := range tests {
		got := c.Check(context.Background(), tt.rcpt)
		if got != tt.want || !got.Verdict.Valid() {
			t.Errorf("Check(%s) = %+v, want %+v", tt.rcpt, got, tt.want)
		}
	}
}

// TestCheck_TableComesFirst: an address the table does not list is
// refused without a probe; a listed one is still verified.
func TestCheck_TableComesFirst(t *testing.T) {
	t.Parallel()
	tab, err := NewTable(TableSource{Entries: []string{"@example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	p := newProber()
	c := newChecker(t, Options{Table: tab, Prober: p, Now: newClock().Now})
	if got := c.Check(context.Background(), "alice@other.test"); got.Verdict != RejectUnknown || p.Calls("alice@other.test") != 0 {
		t.Errorf("Check(unlisted) = %+v after %d probes, want RejectUnknown without a probe", got, p.Calls("alice@other.test"))
	}
	if got := c.Check(context.Background(), "gone@example.test"); got.Verdict != RejectUnknown || p.Calls("gone@example.test") != 1 {
		t.Errorf("Check(listed by catch-all, refused by the next hop) = %+v after %d probes, want RejectUnknown after one", got, p.Calls("gone@example.test"))
	}
}

// TestCheck_Cache follows each kind of answer through the cache's
// lifetimes with a fake clock.
func TestCheck_Cache(t *testing.T) {
	t.Parallel()
	type step struct {
		advance    time.Duration
		set        deliver.ProbeStatus // the next hop's answer from now on; "" keeps it
		want       Verdict
		wantCached bool
		wantProbes int // probes of the address so far, after the step settled
	}
	tests := []struct {
		name  string
		rcpt  string
		steps []step
	}{
		{"positive: fresh, then stale and refreshed in the background", "alice@example.test", []step{
			{0, "", Accept, false, 1},
			{59 * time.Minute, "", Accept, true, 1},
			{time.Minute, "", Accept, true, 2}, // stale: answered at once, refreshed
			{time.Minute, "", Accept, true, 2}, // fresh again
		}},
		{"positive: a refresh that is refused turns it negative", "alice@example.test", []step{
			{0, "", Accept, false, 1},
			{time.Hour, deliver.ProbeRejected, Accept, true, 2},
			{0, "", RejectUnknown, true, 2},
		}},
		{"positive: refreshes failing temporarily keep it until it expires", "alice@example.test", []step{
			{0, "", Accept, false, 1},
			{time.Hour, deliver.ProbeUndetermined, Accept, true, 2},
			{6 * 24 * time.Hour, "", Accept, true, 3},
			{24*time.Hour - time.Hour, "", TempFail, false, 4}, // 7 days after the last answer
		}},
		{"negative: short", "gone@example.test", []step{
			{0, "", RejectUnknown, false, 1},
			{10*time.Minute - time.Second, "", RejectUnknown, true, 1},
			{time.Second, "", RejectUnknown, false, 2},
			{0, "", RejectUnknown, true, 2},
		}},
		{"negative: a mailbox created meanwhile", "gone@example.test", []step{
			{0, "", RejectUnknown, false, 1},
			{10 * time.Minute, deliver.ProbeAccepted, Accept, false, 2},
		}},
		{"temporary failures are not cached", "busy@example.test", []step{
			{0, "", TempFail, false, 1},
			{0, "", TempFail, false, 2},
			{time.Second, deliver.ProbeAccepted, Accept, false, 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk, p := newClock(), newProber()
			c := newChecker(t, Options{Prober: p, Now: clk.Now})
			for i, s := range tt.steps {
				clk.Add(s.advance)
				if s.set != "" {
					p.set(tt.rcpt, s.set)
				}
				got := c.Check(context.Background(), tt.rcpt)
				settle(t, c, tt.rcpt)
				if got.Verdict != s.want || got.Cached != s.wantCached || p.Calls(tt.rcpt) != s.wantProbes {
					t.Errorf("step %d: Check = %s (cached %v) after %d probes; want %s (cached %v) after %d", i, got.Verdict, got.Cached, p.Calls(tt.rcpt), s.want, s.wantCached, s.wantProbes)
				}
			}
		})
	}
}

// TestCheck_StaleAnswerDoesNotWait: a stale positive answer is given at
// once, even while its refresh is stuck.
func TestCheck_StaleAnswerDoesNotWait(t *testing.T) {
	t.Parallel()
	clk, p := newClock(), newProber()
	c := newChecker(t, Options{Prober: p, Now: clk.Now, Wait: time.Hour})
	c.Check(context.Background(), "alice@example.test")
	gate := make(chan struct{})
	defer close(gate)
	p.setGate(gate)
	clk.Add(2 * time.Hour)
	if got := c.Check(context.Background(), "alice@example.test"); got.Verdict != Accept || !got.Cached {
		t.Errorf("Check with a stale answer and a stuck probe = %+v, want Accept from the cache", got)
	}
}

func TestCheck_CaseInsensitiveCache(t *testing.T) {
	t.Parallel()
	p := newProber()
	c := newChecker(t, Options{Prober: p, Now: newClock().Now})
	c.Check(context.Background(), "Alice@Example.TEST")
	if got := c.Check(context.Background(), "alice@example.test"); !got.Cached || p.Calls("alice@example.test") != 1 {
		t.Errorf("second Check in other case = %+v after %d probes, want cached after 1", got, p.Calls("alice@example.test"))
	}
}

// TestCheck_CoalescesProbes: sessions checking one address at once share
// one probe. The answer is a temporary failure, which is never cached, so
// only the sharing can explain a single probe.
func TestCheck_CoalescesProbes(t *testing.T) {
	t.Parallel()
	const n = 20
	clk, p := newClock(), newProber()
	clk.ticks = make(chan struct{}, 2*n)
	p.gate = make(chan struct{})
	c := newChecker(t, Options{Prober: p, Now: clk.Now, Wait: time.Minute})

	results := make(chan Result, n)
	for i := range n {
		rcpt := "busy@example.test"
		if i%2 == 1 {
			rcpt = "BUSY@example.test"
		}
		go func() { results <- c.Check(context.Background(), rcpt) }()
	}
	// Each Check reads the clock once, in the critical section in which
	// it joins or starts the probe: after n readings, all have joined.
	for range n {
		<-clk.ticks
	}
	close(p.gate)
	for range n {
		if got := <-results; got.Verdict != TempFail || got.Reason != "deliver: RCPT TO: 450 4.2.1 Try later" {
			t.Errorf("Check = %+v, want the shared probe's TempFail", got)
		}
	}
	if got := p.Calls("busy@example.test"); got != 1 {
		t.Errorf("%d probes for %d concurrent checks, want 1", got, n)
	}
}

// TestCheck_WaitIsBounded: a slow probe answers TempFail after Wait (or
// when ctx ends), goes on, and its answer serves the retry.
func TestCheck_WaitIsBounded(t *testing.T) {
	t.Parallel()
	p := newProber()
	p.gate = make(chan struct{})
	c := newChecker(t, Options{Prober: p, Now: newClock().Now, Wait: 20 * time.Millisecond})

	if got := c.Check(context.Background(), "alice@example.test"); got.Verdict != TempFail || !strings.Contains(got.Reason, "in progress") {
		t.Errorf("Check with a slow probe = %+v, want TempFail, probe in progress", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := c.Check(ctx, "alice@example.test"); got.Verdict != TempFail {
		t.Errorf("Check with a cancelled context = %+v, want TempFail", got)
	}
	close(p.gate)
	settle(t, c, "alice@example.test")
	if got := c.Check(context.Background(), "alice@example.test"); got.Verdict != Accept || !got.Cached || p.Calls("alice@example.test") != 1 {
		t.Errorf("retry = %+v after %d probes, want Accept from the cache after 1", got, p.Calls("alice@example.test"))
	}
}

func TestCheck_MaxProbes(t *testing.T) {
	t.Parallel()
	p := newProber()
	p.gate = make(chan struct{})
	defer close(p.gate)
	c := newChecker(t, Options{Prober: p, Now: newClock().Now, Wait: time.Millisecond, MaxProbes: 1})
	c.Check(context.Background(), "a@example.test")
	got := c.Check(context.Background(), "b@example.test")
	if got.Verdict != TempFail || !strings.Contains(got.Reason, "too many probes") || p.Calls("b@example.test") != 0 {
		t.Errorf("Check beyond MaxProbes = %+v after %d probes, want TempFail, too many probes, no probe", got, p.Calls("b@example.test"))
	}
}

func TestCheck_CacheIsBounded(t *testing.T) {
	t.Parallel()
	p := newProber()
	c := newChecker(t, Options{Prober: p, Now: newClock().Now, MaxEntries: 2})
	for _, a := range []string{"a@example.test", "b@example.test", "a@example.test", "c@example.test"} {
		c.Check(context.Background(), a)
	}
	// a was used after b, so b was the one dropped for c.
	if got := c.cache.len(); got != 2 {
		t.Errorf("cache holds %d answers, want 2", got)
	}
	c.Check(context.Background(), "a@example.test")
	c.Check(context.Background(), "b@example.test")
	if pa, pb := p.Calls("a@example.test"), p.Calls("b@example.test"); pa != 1 || pb != 2 {
		t.Errorf("probes: a %d, b %d; want a 1 (kept), b 2 (dropped, probed again)", pa, pb)
	}
}

func TestClose_CancelsProbesAndStopsNewOnes(t *testing.T) {
	t.Parallel()
	p := newProber()
	c := New(Options{Prober: p, Now: newClock().Now, Wait: time.Millisecond})
	c.Check(context.Background(), "known@example.test")
	p.setGate(make(chan struct{})) // never opened: only Close can end the probe
	p.started = make(chan string, 1)
	c.Check(context.Background(), "slow@example.test")
	<-p.started
	c.Close() // returns only when the stuck probe has ended

	if got := c.Check(context.Background(), "new@example.test"); got.Verdict != TempFail || got.Reason != "verification stopped" {
		t.Errorf("Check after Close = %+v, want TempFail, verification stopped", got)
	}
	if got := c.Check(context.Background(), "known@example.test"); got.Verdict != Accept || !got.Cached {
		t.Errorf("Check of a cached address after Close = %+v, want Accept from the cache", got)
	}
}

func TestVerdict_Valid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    Verdict
		want bool
	}{{Accept, true}, {RejectUnknown, true}, {TempFail, true}, {"", false}, {"reject", false}} {
		if got := tt.v.Valid(); got != tt.want {
			t.Errorf("Verdict(%q).Valid() = %v, want %v", tt.v, got, tt.want)
		}
	}
}
