package greylist

import (
	"errors"
	"sync"
	"testing"
	"time"
)

const day = 24 * time.Hour

// TestCheck_Rules walks one greylist through postgrey's rules in order;
// each step moves the clock by advance first.
func TestCheck_Rules(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := open(t, t.TempDir(), clk)
	steps := []struct {
		name    string
		advance time.Duration
		tr      Triplet
		want    Decision
	}{
		{"first attempt is deferred for the delay", 0, base, deferred(StatusNew, 5*time.Minute)},
		{"retry after a minute is deferred for the rest", time.Minute, base, deferred(StatusEarly, 4*time.Minute)},
		{"another host of the same /24 is the same client", time.Minute, triplet("192.0.2.99", "alice@sender.test", "bob@example.test"), deferred(StatusEarly, 3*time.Minute)},
		{"one second before the delay", 3*time.Minute - time.Second, base, deferred(StatusEarly, time.Second)},
		{"retry at the delay passes", time.Second, base, passed},
		{"the next message passes", time.Hour, base, known},
		{"sender and recipient compare case-insensitively", 0, triplet("192.0.2.10", "ALICE@Sender.TEST", "Bob@EXAMPLE.test"), known},
		{"another recipient is a new triplet", 0, triplet("192.0.2.10", "alice@sender.test", "carol@example.test"), deferred(StatusNew, 5*time.Minute)},
		{"another sender is a new triplet", 0, triplet("192.0.2.10", "mallory@sender.test", "bob@example.test"), deferred(StatusNew, 5*time.Minute)},
		{"another /24 is a new triplet", 0, triplet("192.0.3.10", "alice@sender.test", "bob@example.test"), deferred(StatusNew, 5*time.Minute)},
		{"remembered 34 days after the last pass", 34 * day, base, known},
		{"each pass extends the retention", 34 * day, base, known},
		{"forgotten after the retention", 35*day + time.Second, base, deferred(StatusNew, 5*time.Minute)},
		{"and greylisted again", 5 * time.Minute, base, passed},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		got, err := g.Check(s.tr)
		if err != nil || got != s.want {
			t.Errorf("%s: Check = %+v, %v; want %+v", s.name, got, err, s.want)
		}
	}
}

func TestCheck_RetryWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		retry time.Duration // after the first attempt
		want  Decision
	}{
		{"retry within the window passes", 2*day - time.Second, passed},
		{"retry at the end of the window passes", 2 * day, passed},
		{"retry after the window starts again", 2*day + time.Second, deferred(StatusNew, 5*time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			g := open(t, t.TempDir(), clk)
			check(t, g, base, deferred(StatusNew, 5*time.Minute))
			clk.Add(tt.retry)
			check(t, g, base, tt.want)
		})
	}
}

func TestCheck_ClientNetworks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		first, then string
		same        bool
	}{
		{"IPv4 /24", "192.0.2.1", "192.0.2.254", true},
		{"IPv4 other /24", "192.0.2.1", "192.0.1.1", false},
		{"IPv4-mapped IPv6 is IPv4", "192.0.2.1", "::ffff:192.0.2.7", true},
		{"IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"IPv6 other /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			g := open(t, t.TempDir(), clk)
			check(t, g, triplet(tt.first, "a@s.test", "b@r.test"), deferred(StatusNew, 5*time.Minute))
			clk.Add(5 * time.Minute)
			want := deferred(StatusNew, 5*time.Minute)
			if tt.same {
				want = passed
			}
			check(t, g, triplet(tt.then, "a@s.test", "b@r.test"), want)
		})
	}
}

// TestCheck_VERPSendersAreOneTriplet: a mailing list's per-message bounce
// address must not make every message a new triplet.
func TestCheck_VERPSendersAreOneTriplet(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := open(t, t.TempDir(), clk)
	check(t, g, triplet("192.0.2.1", "list-bounces-1234@lists.test", "b@r.test"), deferred(StatusNew, 5*time.Minute))
	clk.Add(5 * time.Minute)
	check(t, g, triplet("192.0.2.1", "list-bounces-98765@lists.test", "b@r.test"), passed)
}

func TestCheck_CustomDurations(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g, err := Open(Options{Dir: t.TempDir(), Now: clk.Now, Delay: time.Minute, Retention: day, RetryWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	check(t, g, base, deferred(StatusNew, time.Minute))
	clk.Add(time.Minute)
	check(t, g, base, passed)
	clk.Add(day + time.Second)
	check(t, g, base, deferred(StatusNew, time.Minute))
	clk.Add(time.Hour + time.Second)
	check(t, g, base, deferred(StatusNew, time.Minute))
}

func TestOpen_RetryWindowShorterThanDelayIsExtended(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g, err := Open(Options{Dir: t.TempDir(), Now: clk.Now, Delay: time.Hour, RetryWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	check(t, g, base, deferred(StatusNew, time.Hour))
	clk.Add(time.Hour)
	check(t, g, base, passed)
}

// TestCheck_KnownTripletsWriteAtMostHourly: a busy triplet does not
// append a record per message.
func TestCheck_KnownTripletsWriteAtMostHourly(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := open(t, t.TempDir(), clk)
	check(t, g, base, deferred(StatusNew, 5*time.Minute))
	clk.Add(5 * time.Minute)
	check(t, g, base, passed)
	before := g.st.records
	for range 11 {
		clk.Add(5 * time.Minute)
		check(t, g, base, known)
	}
	if got := g.st.records; got != before {
		t.Errorf("55 minutes of passes appended %d records, want none", got-before)
	}
	clk.Add(5 * time.Minute)
	check(t, g, base, known)
	if got := g.st.records; got != before+1 {
		t.Errorf("a pass an hour after the last recorded one appended %d records, want 1", got-before)
	}
}

func TestCheck_AfterCloseFailsOpen(t *testing.T) {
	t.Parallel()
	g := open(t, t.TempDir(), newClock())
	if err := g.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	got, err := g.Check(base)
	if !errors.Is(err, ErrClosed) || !got.Pass {
		t.Errorf("Check after Close = %+v, %v; want a pass and ErrClosed", got, err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestStatus_Valid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    Status
		want bool
	}{{StatusNew, true}, {StatusEarly, true}, {StatusPassed, true}, {StatusKnown, true}, {"", false}, {"whitelisted", false}} {
		if got := tt.s.Valid(); got != tt.want {
			t.Errorf("Status(%q).Valid() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestCheck_Concurrent: of many sessions seeing one new triplet at once,
// exactly one finds it new.
func TestCheck_Concurrent(t *testing.T) {
	t.Parallel()
	g := open(t, t.TempDir(), newClock())
	const n = 50
	statuses := make(chan Status, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			d, err := g.Check(base)
			if err != nil {
				t.Errorf("Check = %v", err)
			}
			statuses <- d.Status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[Status]int{}
	for s := range statuses {
		count[s]++
	}
	if count[StatusNew] != 1 || count[StatusEarly] != n-1 {
		t.Errorf("statuses = %v, want 1 new and %d early", count, n-1)
	}
}

// The state keeps whole seconds, but a retry must never pass before the
// delay has really gone by: a first attempt late in its second counts
// from the next whole second, so its retries wait up to a second longer,
// never shorter.
func TestCheck_NeverPassesBeforeTheDelay(t *testing.T) {
	t.Parallel()
	clk := newClock()
	clk.Add(900 * time.Millisecond)
	g := open(t, t.TempDir(), clk)
	steps := []struct {
		name    string
		advance time.Duration
		want    Decision
	}{
		{"first attempt at .9 s", 0, deferred(StatusNew, 5*time.Minute+100*time.Millisecond)},
		{"retry 0.4 s short of the delay", 5*time.Minute - 400*time.Millisecond, deferred(StatusEarly, 500*time.Millisecond)},
		{"retry 0.1 s past the delay", 500 * time.Millisecond, passed},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		got, err := g.Check(base)
		if err != nil || got != s.want {
			t.Errorf("%s: Check = %+v, %v; want %+v", s.name, got, err, s.want)
		}
	}
}
