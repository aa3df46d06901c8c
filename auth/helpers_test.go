package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingHash is a passwordHash that matches one password and counts how
// often it was computed. If entered is not nil, match reports there and
// then waits for release to be closed.
type countingHash struct {
	password string
	calls    atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
	entered  chan struct{}
	release  chan struct{}
}

func (h *countingHash) match(pw []byte) bool {
	h.calls.Add(1)
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for {
		m := h.maxIn.Load()
		if n <= m || h.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if h.entered != nil {
		h.entered <- struct{}{}
		<-h.release
	}
	return string(pw) == h.password
}

func (h *countingHash) String() string { return "counting" }

// usersWith builds a snapshot from hashes directly.
func usersWith(hashes map[string]passwordHash) *Users {
	u := &Users{file: "test", hashes: hashes}
	for n := range hashes {
		u.names = append(u.names, n)
	}
	return u
}
