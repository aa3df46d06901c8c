package greylist

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// open opens a Greylist in dir with postgrey's defaults and clk, and
// closes it when the test ends.
func open(t *testing.T, dir string, clk *clock) *Greylist {
	t.Helper()
	g, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func triplet(client, sender, rcpt string) Triplet {
	return Triplet{Client: netip.MustParseAddr(client), Sender: sender, Recipient: rcpt}
}

// base is the triplet most tests use.
var base = Triplet{Client: netip.MustParseAddr("192.0.2.10"), Sender: "alice@sender.test", Recipient: "bob@example.test"}

// check runs Check, which must not fail, and compares the decision.
func check(t *testing.T, g *Greylist, tr Triplet, want Decision) {
	t.Helper()
	got, err := g.Check(tr)
	if err != nil {
		t.Fatalf("Check(%v) error = %v", tr, err)
	}
	if got != want {
		t.Errorf("Check(%v) = %+v, want %+v", tr, got, want)
	}
}

var (
	passed = Decision{Pass: true, Status: StatusPassed}
	known  = Decision{Pass: true, Status: StatusKnown}
)

func deferred(s Status, after time.Duration) Decision {
	return Decision{RetryAfter: after, Status: s}
}
