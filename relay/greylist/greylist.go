package greylist

import (
	"errors"
	"sync"
	"time"
)

// FileName is the state file's name in [Options.Dir].
const FileName = "greylist.db"

// Defaults, postgrey's.
const (
	DefaultDelay       = 5 * time.Minute     // postgrey --delay
	DefaultRetention   = 35 * 24 * time.Hour // postgrey --max-age
	DefaultRetryWindow = 2 * 24 * time.Hour  // postgrey --retry-window
)

// passRefresh is how stale the recorded last pass of a known triplet may
// get before it is written again: often enough for the retention, rarely
// enough that a busy triplet does not write on every message.
const passRefresh = time.Hour

// compactSlack is how many dead records the file may hold beyond the live
// ones before it is rewritten (it is rewritten when records > 2 × live +
// compactSlack).
const compactSlack = 1000

// sweepInterval is how often (by the clock Check sees) expired triplets
// are dropped from memory, so that they stop counting as live when
// deciding whether to rewrite the file.
const sweepInterval = time.Hour

// ErrClosed is returned by [Greylist.Check] after [Greylist.Close].
var ErrClosed = errors.New("greylist: closed")

// Options configure [Open].
type Options struct {
	// Dir is the directory of the state file (state_dir); it must exist.
	Dir string
	// Delay is how long a new triplet must wait before a retry passes
	// (inbound.greylist_delay). Default [DefaultDelay].
	Delay time.Duration
	// Retention is how long a triplet is remembered after its last pass
	// (inbound.greylist_retention). Default [DefaultRetention].
	Retention time.Duration
	// RetryWindow is how long after its first attempt a triplet that
	// never passed is remembered. Default [DefaultRetryWindow]; a window
	// not longer than Delay, in which no retry could pass, is extended
	// by the default.
	RetryWindow time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// FS is the file system. Default the real one.
	FS FS
}

// Status says which rule decided.
type Status string

const (
	// StatusNew: the triplet is unknown (or was forgotten); deferred.
	StatusNew Status = "new"
	// StatusEarly: a retry before the delay ended; deferred.
	StatusEarly Status = "early"
	// StatusPassed: a retry after the delay; it passes, and the triplet
	// is known from now on.
	StatusPassed Status = "passed"
	// StatusKnown: the triplet passed before, within the retention.
	StatusKnown Status = "known"
)

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusNew, StatusEarly, StatusPassed, StatusKnown:
		return true
	}
	return false
}

// Decision is the outcome of [Greylist.Check].
type Decision struct {
	// Pass is true when the recipient may be accepted now: Status is
	// StatusPassed or StatusKnown. Otherwise the session defers it with
	// a 4xx (postgrey answers 450 4.2.0).
	Pass bool
	// RetryAfter is, when Pass is false, how long until a retry passes;
	// for the reply text and the log. Zero when Pass is true.
	RetryAfter time.Duration
	// Status is the rule that decided, for the log.
	Status Status
}

// Greylist decides about triplets and remembers them. Build it with
// [Open] and call [Greylist.Close] when done; its methods are safe for
// concurrent use. The durations are fixed at Open: a configuration reload
// that changes them closes the Greylist and opens a new one on the same
// directory, and the triplets carry over.
type Greylist struct {
	delay, retention, window time.Duration
	now                      func() time.Time

	mu      sync.Mutex
	st      *store
	entries map[key]entry
	loaded  Loaded
	closed  bool
	// retryCompact is the record count below which a failed rewrite is
	// not tried again.
	retryCompact int
	// nextSweep is when Check next drops expired triplets.
	nextSweep time.Time
}

// Loaded says what [Open] found in the state file.
type Loaded struct {
	// Triplets is how many live triplets were read.
	Triplets int
	// Damaged is how many lines were unreadable (a torn last write, or
	// damage) and were dropped; their triplets, if any, are forgotten.
	Damaged int
}

// Open reads the state file in opts.Dir, dropping damaged records and
// triplets that have expired, and rewrites it compactly. A missing file is
// an empty state; a damaged one is never an error. Open fails only when
// the file cannot be read or rewritten at all (a missing directory, no
// permission), since greylisting could then not remember anything.
func Open(opts Options) (*Greylist, error) {
	if opts.Dir == "" {
		return nil, errors.New("greylist: no state directory")
	}
	g := &Greylist{
		delay:     positive(opts.Delay, DefaultDelay),
		retention: positive(opts.Retention, DefaultRetention),
		window:    positive(opts.RetryWindow, DefaultRetryWindow),
		now:       opts.Now,
	}
	if g.window <= g.delay {
		g.window = g.delay + DefaultRetryWindow
	}
	if g.now == nil {
		g.now = time.Now
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = osFS{}
	}
	g.st = newStore(fsys, opts.Dir)
	entries, damaged, err := g.st.load()
	if err != nil {
		return nil, err
	}
	g.entries = entries
	g.sweep(g.now())
	g.loaded = Loaded{Triplets: len(g.entries), Damaged: damaged}
	if err := g.st.rewrite(g.entries); err != nil {
		g.st.close()
		return nil, err
	}
	return g, nil
}

func positive(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Loaded returns what Open found in the state file.
func (g *Greylist) Loaded() Loaded { return g.loaded }

// Len returns how many triplets are remembered, expired ones not yet
// dropped included.
func (g *Greylist) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.entries)
}

// Check decides about one attempt of t and records it: call it once per
// recipient at RCPT time, for clients that are not exempt.
//
// The Decision is always usable. A non-nil error says only that the
// state could not be written (or that the Greylist is closed, in which
// case the Decision is a pass: greylisting fails open); log it, and go by
// the Decision — at worst the triplet is greylisted again after a
// restart.
func (g *Greylist) Check(t Triplet) (Decision, error) {
	k := keyOf(t)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return Decision{Pass: true, Status: StatusKnown}, ErrClosed
	}
	now := g.now()
	e, ok := g.entries[k]
	if ok && g.expired(e, now) {
		ok = false
	}
	var d Decision
	changed := true
	switch {
	case !ok:
		// Rounded up: the state keeps whole seconds, and a retry must
		// never pass before the delay, only up to a second after it.
		e = entry{first: ceilUnix(now)}
		d = Decision{RetryAfter: time.Unix(e.first, 0).Add(g.delay).Sub(now), Status: StatusNew}
	case e.passed != 0:
		d = Decision{Pass: true, Status: StatusKnown}
		changed = now.Sub(time.Unix(e.passed, 0)) >= passRefresh
		if changed {
			e.passed = now.Unix()
		}
	default:
		if wait := time.Unix(e.first, 0).Add(g.delay).Sub(now); wait > 0 {
			d, changed = Decision{RetryAfter: wait, Status: StatusEarly}, false
			break
		}
		e.passed = max(now.Unix(), e.first)
		d = Decision{Pass: true, Status: StatusPassed}
	}
	if !changed {
		return d, nil
	}
	g.entries[k] = e
	if err := g.st.add(k, e); err != nil {
		return d, err
	}
	if !now.Before(g.nextSweep) {
		g.sweep(now)
	}
	if g.st.records > 2*len(g.entries)+compactSlack && g.st.records >= g.retryCompact {
		if err := g.st.rewrite(g.entries); err != nil {
			// Do not try again on every Check (a full disk would
			// make each one write the whole state): wait for
			// compactSlack more records.
			g.retryCompact = g.st.records + compactSlack
			return d, err
		}
	}
	return d, nil
}

// ceilUnix is t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// expired reports whether e is to be forgotten at now: a triplet that
// never passed, after the retry window; one that passed, after the
// retention since its last pass.
func (g *Greylist) expired(e entry, now time.Time) bool {
	if e.passed == 0 {
		return now.Sub(time.Unix(e.first, 0)) > g.window
	}
	return now.Sub(time.Unix(e.passed, 0)) > g.retention
}

// sweep drops expired triplets from memory; the next rewrite drops them
// from the file.
func (g *Greylist) sweep(now time.Time) {
	for k, e := range g.entries {
		if g.expired(e, now) {
			delete(g.entries, k)
		}
	}
	g.nextSweep = now.Add(sweepInterval)
}

// Close fsyncs and closes the state file. Later Checks pass and return
// [ErrClosed]; a second Close does nothing.
func (g *Greylist) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.st.close()
}
