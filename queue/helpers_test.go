package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait for an event; reaching it is a failure, not
// a way to synchronise.
const waitLimit = 20 * time.Second

// fakeClock is a manual clock for retry and expiry tests.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	alarms  []alarm
	changed chan struct{} // closed and replaced whenever alarms change
}

type alarm struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Alarm implements Options.Alarm.
func (c *fakeClock) Alarm(at time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.alarms = append(c.alarms, alarm{at, ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Set moves the clock to t and fires the alarms due by then.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.alarms[:0]
	for _, a := range c.alarms {
		if a.at.After(t) {
			kept = append(kept, a)
			continue
		}
		a.ch <- t
	}
	c.alarms = kept
}

// waitAlarm waits until someone (the scheduler) sleeps until exactly at.
func (c *fakeClock) waitAlarm(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		c.mu.Lock()
		changed := c.changed
		var pending []time.Time
		for _, a := range c.alarms {
			if a.at.Equal(at) {
				c.mu.Unlock()
				return
			}
			pending = append(pending, a.at)
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no alarm set for %v; pending alarms %v", at, pending)
		}
	}
}

// event is one captured log line.
type event struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logRecorder is a slog.Handler that keeps every line, so tests can wait
// for mail log events instead of sleeping.
type logRecorder struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	e := event{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

// match returns the events with message msg whose attributes include all
// of want (key, value pairs).
func (l *logRecorder) match(msg string, want ...string) []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event
	for _, e := range l.events {
		if e.msg != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if e.attrs[want[i]] != want[i+1] {
				ok = false
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until n events match and returns them.
func (l *logRecorder) wait(t *testing.T, n int, msg string, want ...string) []event {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if got := l.match(msg, want...); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			l.mu.Lock()
			all := append([]event(nil), l.events...)
			l.mu.Unlock()
			t.Fatalf("timed out waiting for %d %q events with %q; log: %v", n, msg, want, all)
		}
	}
}

// delivery is what fakeDeliverer saw of one Deliver call.
type delivery struct {
	ID         ID
	From       string
	Recipients []string
	Attempt    int
	Size       int64
	Now        time.Time // the clock at the call
	Data       []byte
}

// fakeDeliverer records deliveries. outcome decides each recipient's
// result (nil: delivered). When block is set, Deliver waits on it (or ctx)
// after announcing itself on started.
type fakeDeliverer struct {
	clock   func() time.Time
	outcome func(d *Delivery, rcpt string) Result
	block   chan struct{}
	started chan ID

	mu          sync.Mutex
	got         []delivery
	inflight    int
	maxInflight int
}

func (f *fakeDeliverer) Deliver(ctx context.Context, d *Delivery) []Result {
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if f.started != nil {
		f.started <- d.ID
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			res := make([]Result, len(d.Recipients))
			for i, r := range d.Recipients {
				res[i] = Result{Recipient: r, Err: ctx.Err()}
			}
			return res
		}
	}
	rec := delivery{ID: d.ID, From: d.From, Recipients: append([]string(nil), d.Recipients...), Attempt: d.Attempt, Size: d.Size}
	if f.clock != nil {
		rec.Now = f.clock()
	}
	var readErr error
	if r, err := d.Open(); err != nil {
		readErr = err
	} else {
		rec.Data, readErr = io.ReadAll(r)
		r.Close()
	}
	f.mu.Lock()
	f.got = append(f.got, rec)
	f.mu.Unlock()
	res := make([]Result, len(d.Recipients))
	for i, r := range d.Recipients {
		switch {
		case readErr != nil:
			res[i] = Result{Recipient: r, Err: readErr}
		case f.outcome != nil:
			res[i] = f.outcome(d, r)
			if res[i].Recipient == "" {
				res[i].Recipient = r
			}
		default:
			res[i] = Result{Recipient: r, Reply: "250 2.0.0 Ok", NextHop: "smtp:[sink.example]:25", MX: "192.0.2.1:25", TLS: "TLSv1.3"}
		}
	}
	return res
}

// deliveries returns the deliveries seen so far, optionally of one ID.
func (f *fakeDeliverer) deliveries(id ID) []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []delivery
	for _, d := range f.got {
		if id == "" || d.ID == id {
			out = append(out, d)
		}
	}
	return out
}

// Outcomes used by tests.
func tempFail(reply string) Result {
	return Result{Err: errors.New("temporary"), Reply: reply, RemoteMTA: "mx.example.net", NextHop: "smtp:example.net", MX: "192.0.2.25:25"}
}

func permFail(reply string) Result {
	return Result{Err: errors.New("permanent"), Permanent: true, Reply: reply, RemoteMTA: "mx.example.net", NextHop: "smtp:example.net", MX: "192.0.2.25:25"}
}

// testQueue bundles a queue and its fakes.
type testQueue struct {
	*Queue
	opts  Options
	clock *fakeClock
	log   *logRecorder
	deliv *fakeDeliverer
	stop  func() // stops the running scheduler; nil when none runs
}

// newTestQueue opens a queue in a fresh directory with a fake clock, a
// recording deliverer and a recording logger; edit adjusts the options.
func newTestQueue(t *testing.T, edit func(*Options)) *testQueue {
	t.Helper()
	clock := newFakeClock()
	tq := &testQueue{clock: clock, log: newLogRecorder(), deliv: &fakeDeliverer{clock: clock.Now}}
	tq.opts = Options{
		Dir:         filepath.Join(t.TempDir(), "queue"),
		Hostname:    "mail.example.org",
		Retry:       []time.Duration{time.Minute, 5 * time.Minute},
		MaxLifetime: time.Hour,
		Concurrency: 4,
		Deliverer:   tq.deliv,
		Logger:      slog.New(tq.log),
		Now:         clock.Now,
		Alarm:       clock.Alarm,
	}
	if edit != nil {
		edit(&tq.opts)
	}
	q, err := Open(tq.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tq.Queue = q
	t.Cleanup(func() { tq.Queue.Close() })
	return tq
}

// reopen stops the scheduler, closes the queue and opens the same spool
// again, as a restart.
func (tq *testQueue) reopen(t *testing.T) {
	t.Helper()
	if tq.stop != nil {
		tq.stop()
	}
	tq.Queue.Close()
	q, err := Open(tq.opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	tq.Queue = q
}

// run starts the scheduler until the test ends.
func (tq *testQueue) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	q := tq.Queue
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	tq.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(tq.stop)
}

// commit queues a message and fails the test on error.
func commit(t *testing.T, q *Queue, env Envelope, header, body string) ID {
	t.Helper()
	d, err := q.Create()
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := io.WriteString(d, body); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := d.Commit(env, []byte(header)); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return d.ID()
}

// spoolFiles lists the message files in dir: not subdirectories, not the
// lock, not spares (which hold no message; see spareFiles).
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, n := range dirFiles(t, dir) {
		if !strings.HasSuffix(n, extSpare) {
			names = append(names, n)
		}
	}
	return names
}

// spareFiles lists the spare files in dir.
func spareFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, n := range dirFiles(t, dir) {
		if strings.HasSuffix(n, extSpare) {
			names = append(names, n)
		}
	}
	return names
}

func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != lockName {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// hasTemporaries reports whether any name is a temporary file.
func hasTemporaries(names []string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, extTmp) {
			return true
		}
	}
	return false
}

const testBody = "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nHi Bob.\r\n"
const testHeader = "Received: from client.example (192.0.2.7) by mail.example.org\r\n"

func testEnvelope(rcpts ...string) Envelope {
	if len(rcpts) == 0 {
		rcpts = []string{"bob@example.net"}
	}
	return Envelope{From: "alice@example.com", Recipients: rcpts,
		Origin: Origin{Listener: "submissions", Role: "submission", ClientIP: "192.0.2.7", User: "alice", TLS: "TLSv1.3"}}
}
