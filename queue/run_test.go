package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"smarthost/queue/mlog"
)

// deferOriginals defers every recipient of messages with a sender and
// delivers DSNs (null sender), so tests can follow one message's retries.
func deferOriginals(d *Delivery, rcpt string) Result {
	if d.From == "" {
		return Result{Reply: "250 2.0.0 Ok"}
	}
	return tempFail("451 4.3.0 try again later")
}

func TestRetry_FollowsScheduleThenExpires(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, func(o *Options) {
		o.Retry = []time.Duration{time.Minute, 5 * time.Minute}
		o.MaxLifetime = 12 * time.Minute
	})
	tq.deliv.outcome = deferOriginals
	t0 := tq.clock.Now()
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)

	// Attempt n+1 is due Retry[n-1] after attempt n (the last step
	// repeats), and the last one is moved up to the end of the lifetime.
	wantAttempts := []time.Duration{0, 1 * time.Minute, 6 * time.Minute, 11 * time.Minute, 12 * time.Minute}
	for n, at := range wantAttempts {
		if n > 0 {
			tq.clock.waitAlarm(t, t0.Add(at))
			tq.clock.Set(t0.Add(at))
		}
		if n == len(wantAttempts)-1 {
			break
		}
		ev := tq.log.wait(t, n+1, mlog.Deferred, mlog.QueueID, string(id))[n]
		next := t0.Add(wantAttempts[n+1]).Format(time.RFC3339)
		if ev.attrs[mlog.Attempt] != strconv.Itoa(n+1) || ev.attrs[mlog.NextAttempt] != next || ev.attrs[mlog.Code] != "451" {
			t.Errorf("deferred event %d = %v, want attempt %d, next_attempt %s, code 451", n+1, ev.attrs, n+1, next)
		}
	}
	exp := tq.log.wait(t, 1, mlog.Expired, mlog.QueueID, string(id))[0]
	dsn := tq.log.wait(t, 1, mlog.DSNQueued, mlog.QueueID, string(id))[0]
	if exp.attrs[mlog.DSNID] != dsn.attrs[mlog.DSNID] || exp.attrs[mlog.Rcpt] != "bob@example.net" || exp.attrs[mlog.Enhanced] != "4.3.0" {
		t.Errorf("expired event = %v, want rcpt bob@example.net, enhanced 4.3.0 (the last deferral's, as Postfix), dsn_id %s", exp.attrs, dsn.attrs[mlog.DSNID])
	}
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))

	got := tq.deliv.deliveries(id)
	if len(got) != len(wantAttempts) {
		t.Fatalf("attempts = %d, want %d", len(got), len(wantAttempts))
	}
	for i, d := range got {
		if d.Attempt != i+1 || !d.Now.Equal(t0.Add(wantAttempts[i])) {
			t.Errorf("attempt %d ran as attempt %d at %v, want at %v", i+1, d.Attempt, d.Now.Sub(t0), wantAttempts[i])
		}
	}
	dsnID := ID(dsn.attrs[mlog.DSNID])
	tq.log.wait(t, 1, mlog.Delivered, mlog.QueueID, string(dsnID))
	if d := tq.deliv.deliveries(dsnID); len(d) != 1 || d[0].From != "" || len(d[0].Recipients) != 1 || d[0].Recipients[0] != "alice@example.com" {
		t.Errorf("DSN deliveries = %+v, want one from <> to alice@example.com", d)
	}
}

func TestRun_LimitsConcurrency(t *testing.T) {
	t.Parallel()
	const limit, messages = 2, 7
	tq := newTestQueue(t, func(o *Options) { o.Concurrency = limit })
	tq.deliv.block = make(chan struct{})
	tq.deliv.started = make(chan ID, messages)
	for range messages {
		commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	}
	tq.run(t)
	waitStart := func() {
		select {
		case <-tq.deliv.started:
		case <-time.After(waitLimit):
			t.Fatalf("a delivery did not start")
		}
	}
	// Fill every slot, then free one at a time: each release lets exactly
	// one more start.
	started := 0
	for ; started < limit; started++ {
		waitStart()
	}
	for range messages {
		tq.deliv.block <- struct{}{}
		if started < messages {
			waitStart()
			started++
		}
	}
	tq.log.wait(t, messages, mlog.Removed)
	tq.deliv.mu.Lock()
	defer tq.deliv.mu.Unlock()
	if tq.deliv.maxInflight != limit {
		t.Errorf("most deliveries in flight = %d, want %d", tq.deliv.maxInflight, limit)
	}
}

func TestFlush_RetriesDeferredMailNow(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = deferOriginals
	a := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	b := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(a))
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(b))

	// One ID: only that message, without the clock moving.
	if err := tq.Flush(a); err != nil {
		t.Fatalf("Flush(%s) = %v", a, err)
	}
	tq.log.wait(t, 2, mlog.Deferred, mlog.QueueID, string(a))
	if n := len(tq.deliv.deliveries(b)); n != 1 {
		t.Errorf("attempts of unflushed %s = %d, want 1", b, n)
	}
	// No IDs: everything.
	if err := tq.Flush(); err != nil {
		t.Fatalf("Flush() = %v", err)
	}
	tq.log.wait(t, 3, mlog.Deferred, mlog.QueueID, string(a))
	tq.log.wait(t, 2, mlog.Deferred, mlog.QueueID, string(b))

	if err := tq.Flush("NOSUCHMESSAGE1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Flush(unknown) = %v, want ErrNotFound", err)
	}
	if err := tq.Flush("../../etc/passwd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Flush(path) = %v, want ErrNotFound", err)
	}
}

func TestFlushDomain_RetriesOnlyMailForThatDomain(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = deferOriginals
	home := testEnvelope()
	home.Recipients = []string{"user@Home.example"}
	other := testEnvelope()
	other.Recipients = []string{"user@elsewhere.example"}
	a := commit(t, tq.Queue, home, testHeader, testBody)
	b := commit(t, tq.Queue, other, testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(a))
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(b))

	if n := tq.FlushDomain("home.EXAMPLE."); n != 1 {
		t.Errorf("FlushDomain(home.example) = %d, want 1", n)
	}
	tq.log.wait(t, 2, mlog.Deferred, mlog.QueueID, string(a))
	if n := len(tq.deliv.deliveries(b)); n != 1 {
		t.Errorf("attempts of %s (other domain) = %d, want 1", b, n)
	}
	if n := tq.FlushDomain("nowhere.example"); n != 0 {
		t.Errorf("FlushDomain(nowhere.example) = %d, want 0", n)
	}
}

func TestHold_KeepsMessageUntilRelease(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	held := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	if err := tq.Hold(held); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	tq.log.wait(t, 1, mlog.Held, mlog.QueueID, string(held))
	if err := tq.Flush(held); !errors.Is(err, ErrHeld) {
		t.Errorf("Flush(held) = %v, want ErrHeld", err)
	}
	// Held survives a restart: it is in the record.
	tq.reopen(t)
	if l := tq.List(); len(l) != 1 || !l[0].Held {
		t.Fatalf("List after restart = %+v, want the message held", l)
	}
	other := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	tq.Flush()
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(other))
	tq.mu.Lock()
	scheduled := tq.msgs[held].index >= 0
	tq.mu.Unlock()
	if n := len(tq.deliv.deliveries(held)); n != 0 || scheduled {
		t.Errorf("held message: %d deliveries, scheduled %v; want none, not scheduled", n, scheduled)
	}

	if err := tq.Release(held); err != nil {
		t.Fatalf("Release: %v", err)
	}
	tq.log.wait(t, 1, mlog.Released, mlog.QueueID, string(held))
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(held))
	if err := tq.Hold(held); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hold(delivered) = %v, want ErrNotFound", err)
	}
}

func TestDelete_RemovesWithoutDelivery(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	a := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	b := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	c := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)

	if err := tq.Delete(a, "NOSUCHMESSAGE1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(a, unknown) = %v, want ErrNotFound for the unknown ID", err)
	}
	if l := tq.List(); len(l) != 2 || l[0].ID != b || l[1].ID != c {
		t.Errorf("List after Delete(%s) = %v, want %s and %s", a, l, b, c)
	}
	n, err := tq.DeleteAll()
	if n != 2 || err != nil {
		t.Errorf("DeleteAll = %d, %v; want 2, nil", n, err)
	}
	if files := spoolFiles(t, tq.opts.Dir); len(files) != 0 {
		t.Errorf("spool after deleting everything = %q, want nothing", files)
	}
	if got := len(tq.log.match(mlog.Deleted)); got != 3 {
		t.Errorf("deleted events = %d, want 3", got)
	}
	tq.run(t)
	tq.Flush()
	tq.reopen(t)
	if l := tq.List(); len(l) != 0 || len(tq.deliv.deliveries("")) != 0 {
		t.Errorf("after delete and restart: List %v, %d deliveries; want nothing", l, len(tq.deliv.deliveries("")))
	}
}

func TestRestart_KeepsRecipientStateAndHistory(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = func(d *Delivery, rcpt string) Result {
		if rcpt == "later@example.net" {
			return tempFail("421 4.4.2 too busy")
		}
		return Result{Reply: "250 2.0.0 Ok", MX: "192.0.2.1:25", TLS: "TLSv1.3"}
	}
	id := commit(t, tq.Queue, testEnvelope("now@example.net", "later@example.net"), testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(id))

	tq.reopen(t)
	l := tq.List()
	if len(l) != 1 {
		t.Fatalf("List after restart = %v, want 1 message", l)
	}
	s := l[0]
	wantNext := tq.clock.Now().Add(time.Minute)
	if s.Attempts != 1 || !s.NextAttempt.Equal(wantNext) {
		t.Errorf("after restart: attempts %d, next %v; want 1, %v", s.Attempts, s.NextAttempt, wantNext)
	}
	want := map[string]RecipientState{"now@example.net": StateDelivered, "later@example.net": StateDeferred}
	for _, r := range s.Recipients {
		if r.State != want[r.Address] {
			t.Errorf("recipient %s state %s, want %s", r.Address, r.State, want[r.Address])
		}
		if r.Address == "later@example.net" && (r.Reply != "421 4.4.2 too busy" || r.Status != "4.4.2" || r.Attempts != 1) {
			t.Errorf("deferred recipient = %+v, want reply, status 4.4.2, 1 attempt", r)
		}
	}
	d, err := tq.Show(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != 2 || d.History[0].Outcome != StateDelivered || d.History[1].Outcome != StateDeferred || d.History[1].MX != "192.0.2.25:25" {
		t.Errorf("history after restart = %+v, want one delivered and one deferred entry", d.History)
	}

	// Only the deferred recipient is attempted again.
	tq.deliv.outcome = nil
	tq.run(t)
	tq.clock.waitAlarm(t, wantNext)
	tq.clock.Set(wantNext)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	got := tq.deliv.deliveries(id)
	if last := got[len(got)-1]; len(last.Recipients) != 1 || last.Recipients[0] != "later@example.net" || last.Attempt != 2 {
		t.Errorf("attempt after restart = %+v, want attempt 2 for later@example.net only", last)
	}
}

func TestRun_ShutdownDoesNotUseARetryStep(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.block = make(chan struct{}) // never released: the attempt ends with ctx
	tq.deliv.started = make(chan ID, 1)
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tq.Run(ctx) }()
	<-tq.deliv.started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after shutdown", err)
	}
	if tq.deliv.inflight != 0 {
		t.Errorf("Run returned with %d deliveries in flight", tq.deliv.inflight)
	}
	l := tq.List()
	if len(l) != 1 || l[0].Attempts != 0 || l[0].Recipients[0].State != StatePending || l[0].NextAttempt.After(tq.clock.Now()) {
		t.Errorf("after shutdown mid-attempt: %+v; want attempts 0, recipient pending, due now", l)
	}
	if len(tq.log.match(mlog.Deferred, mlog.QueueID, string(id))) != 0 {
		t.Errorf("shutdown logged a deferral")
	}
	if err := tq.Run(context.Background()); err == nil {
		t.Errorf("second Run = nil, want an error")
	}
}

// panicDeliverer panics on every delivery.
type panicDeliverer struct{}

func (panicDeliverer) Deliver(context.Context, *Delivery) []Result { panic("boom") }

func TestRun_DelivererPanicDefers(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, func(o *Options) { o.Deliverer = panicDeliverer{} })
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(id))
	if p := tq.log.match(mlog.Panic, mlog.QueueID, string(id)); len(p) != 1 || p[0].attrs[mlog.Stack] == "" {
		t.Errorf("panic events = %v, want one with a stack", p)
	}
}

func TestRun_MissingResultDefers(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = func(d *Delivery, rcpt string) Result {
		if rcpt == "lost@example.net" {
			return Result{Recipient: "someone-else@example.net"} // not a recipient of this attempt
		}
		return Result{Reply: "250 ok"}
	}
	id := commit(t, tq.Queue, testEnvelope("ok@example.net", "lost@example.net"), testHeader, testBody)
	tq.run(t)
	ev := tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(id))
	if ev[0].attrs[mlog.Rcpt] != "lost@example.net" {
		t.Errorf("deferred = %v, want lost@example.net (no result for it)", ev[0].attrs)
	}
}

func TestRecordWrite_IsAtomic(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	if err := tq.Hold(id); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(tq.opts.Dir, string(id)+extRecord))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeRecord(b)
	if err != nil || !rec.Held {
		t.Errorf("record after Hold = %+v, %v; want held", rec, err)
	}
	if hasTemporaries(spoolFiles(t, tq.opts.Dir)) {
		t.Errorf("temporaries left after a record update: %q", spoolFiles(t, tq.opts.Dir))
	}
}

func TestStats_CountsMessagesAndOldestArrival(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	if st := tq.Stats(); st.Messages != 0 || !st.Oldest.IsZero() {
		t.Errorf("Stats of an empty queue = %+v", st)
	}
	commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	list := tq.List()
	st := tq.Stats()
	if st.Messages != 2 || !st.Oldest.Equal(list[0].Arrival) {
		t.Errorf("Stats = %+v, want 2 messages, oldest %v", st, list[0].Arrival)
	}
}
