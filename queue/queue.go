package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a [Queue]. The server fills it from the [delivery]
// section of the configuration.
type Options struct {
	// Dir is the spool directory (the server passes state_dir/queue). It is
	// created with mode 0700 if missing.
	Dir string
	// Hostname names this system in DSNs: From MAILER-DAEMON@Hostname and
	// Reporting-MTA. Required.
	Hostname string
	// Retry is the wait before each retry of deferred mail, indexed by the
	// number of attempts so far; the last step repeats. Required, each step
	// positive.
	Retry []time.Duration
	// MaxLifetime is how long after arrival deferred mail keeps being
	// retried before it expires and bounces, like Postfix's
	// maximal_queue_lifetime (0 bounces after the first temporary failure,
	// as in Postfix).
	MaxLifetime time.Duration
	// Concurrency is the most Deliverer.Deliver calls in flight at once.
	// Required, at least 1.
	Concurrency int
	// Deliverer makes delivery attempts. Required.
	Deliverer Deliverer
	// Logger receives the mail log events (see events.go). nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Alarm returns a channel that receives once the clock reaches at; the
	// scheduler sleeps on it until the next message is due. nil means a
	// timer on the real clock (measured with Now). Tests pass a fake
	// clock's Now and Alarm together.
	Alarm func(at time.Time) <-chan time.Time
	// FS is the file system; nil means the real one. Tests inject failures.
	// The spool lock always uses the real file system.
	FS FS
	// SignDSN, when set, returns a DKIM-Signature header (CRLF-terminated)
	// for a DSN we generate; it is prepended at delivery like a session's
	// signature. nil sends DSNs unsigned.
	SignDSN func(msg []byte) (header []byte, err error)
}

// check reports the first problem with o.
func (o *Options) check() error {
	switch {
	case o.Dir == "":
		return errors.New("queue: options: no spool directory")
	case o.Hostname == "":
		return errors.New("queue: options: no hostname (needed for DSNs)")
	case len(o.Retry) == 0:
		return errors.New("queue: options: empty retry schedule")
	case o.MaxLifetime < 0:
		return errors.New("queue: options: negative max lifetime")
	case o.Concurrency < 1:
		return fmt.Errorf("queue: options: concurrency %d, want at least 1", o.Concurrency)
	case o.Deliverer == nil:
		return errors.New("queue: options: no deliverer")
	}
	for i, d := range o.Retry {
		if d <= 0 {
			return fmt.Errorf("queue: options: retry step %d is %v, want a positive duration", i, d)
		}
	}
	return nil
}

// Queue is the durable spool and its scheduler. Sessions add messages with
// [Queue.Create]; [Queue.Run] delivers them; the admin methods inspect and
// change the queue. All methods are safe for concurrent use.
type Queue struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	alarm func(at time.Time) <-chan time.Time
	spool *spool
	lock  *spoolLock
	ids   idGen

	// wake nudges the scheduler: a message became due, a slot came free.
	wake chan struct{}

	mu       sync.Mutex
	msgs     map[ID]*message
	sched    schedule // messages waiting for their next attempt
	inflight int      // attempts running
	started  bool     // Run has been called
}

// message is the in-memory state of one queued message.
type message struct {
	id ID

	// mu serialises changes to the record and its file: an attempt's
	// outcome, hold/release, deletion. Lock order: message.mu, then
	// Queue.mu.
	mu   sync.Mutex
	rec  *record
	gone bool // deleted or removed; its files are gone or going

	// Guarded by Queue.mu.
	due    time.Time // when it is next attempted, while scheduled
	index  int       // position in Queue.sched; -1 when not scheduled
	active bool      // an attempt is running
}

// Open opens the spool in opts.Dir, creating it if missing, and recovers
// it as Postfix's queue manager does at start-up: half-written temporaries
// and data files without an envelope record (a crash before the commit
// point) are deleted; records whose data is missing or the wrong size, or
// that cannot be decoded, are moved to the corrupt/ subdirectory and
// logged; every other record is loaded (envelopes only, never bodies) and
// scheduled at its next attempt time. Only one Queue may have a spool open;
// release it with [Queue.Close].
func Open(opts Options) (*Queue, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	q := &Queue{
		opts:  opts,
		log:   opts.Logger,
		now:   opts.Now,
		alarm: opts.Alarm,
		wake:  make(chan struct{}, 1),
		msgs:  make(map[ID]*message),
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.alarm == nil {
		q.alarm = func(at time.Time) <-chan time.Time { return time.After(at.Sub(q.now())) }
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = osFS{}
	}
	if err := fsys.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: create spool: %w", err)
	}
	q.spool = newSpool(opts.Dir, fsys)
	lock, err := lockSpool(opts.Dir)
	if err != nil {
		return nil, err
	}
	q.lock = lock
	if err := q.load(); err != nil {
		lock.release()
		return nil, err
	}
	return q, nil
}

// Close releases the spool lock. Call it after [Queue.Run] has returned and
// no session can call [Queue.Create]; the Queue must not be used after.
func (q *Queue) Close() error { return q.lock.release() }

// load recovers and loads the spool; see [Open].
func (q *Queue) load() error {
	s := q.spool
	entries, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("queue: read spool: %w", err)
	}
	dataSize := make(map[ID]int64)
	var records []ID
	var changed bool
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() || name == lockName:
		case strings.HasSuffix(name, extSpare):
			// Holds no message; reused (or deleted, beyond maxSpares).
			s.addSpare(filepath.Join(s.dir, name))
		case strings.HasSuffix(name, extTmp):
			// Written before a commit point: never committed.
			if err := s.fs.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("queue: recover: %w", err)
			}
			changed = true
		case strings.HasSuffix(name, extData):
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("queue: recover: %w", err)
			}
			dataSize[ID(strings.TrimSuffix(name, extData))] = info.Size()
		case strings.HasSuffix(name, extRecord):
			records = append(records, ID(strings.TrimSuffix(name, extRecord)))
		}
	}
	for i, r := range q.loadRecords(records, dataSize) {
		id, rec, reason, err := records[i], r.rec, r.reason, r.err
		if err != nil {
			return err
		}
		if reason != "" {
			if err := q.setAside(id, reason); err != nil {
				return err
			}
			changed = true
		} else {
			q.add(&message{id: id, rec: rec, index: -1})
		}
		delete(dataSize, id)
	}
	for id := range dataSize {
		// Data without a record: the crash came before the commit point.
		if err := s.fs.Remove(s.dataPath(id)); err != nil {
			return fmt.Errorf("queue: recover: %w", err)
		}
		changed = true
	}
	if changed {
		if err := s.fsyncDir(); err != nil {
			return fmt.Errorf("queue: recover: %w", err)
		}
	}
	q.logRecovered(len(q.msgs))
	return nil
}

// loaded is loadRecord's result.
type loaded struct {
	rec    *record
	reason string
	err    error
}

// loadRecords loads records with one worker per CPU, the results in the
// order of ids. Start-up with a long queue is all file opens and JSON
// decoding (about 25 µs a message), which every core can share: 100,000
// queued messages would otherwise take twice as long on two cores.
// dataSize is only read.
func (q *Queue) loadRecords(ids []ID, dataSize map[ID]int64) []loaded {
	out := make([]loaded, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(ids), 1)) {
		wg.Go(func() {
			buf := make([]byte, 0, 8<<10)
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				r := &out[i]
				r.rec, r.reason, buf, r.err = q.loadRecord(ids[i], dataSize, buf)
			}
		})
	}
	wg.Wait()
	return out
}

// loadRecord reads one envelope record, cold (header and history are read
// again when needed), through buf, which it returns for the next call. A
// non-empty reason says why the message cannot be used; err is an I/O
// failure that stops recovery.
func (q *Queue) loadRecord(id ID, dataSize map[ID]int64, buf []byte) (rec *record, reason string, _ []byte, err error) {
	buf, err = readFileInto(q.spool.fs, q.spool.recordPath(id), buf)
	if err != nil {
		return nil, "", buf, fmt.Errorf("queue: recover %s: %w", id, err)
	}
	rec, err = decodeColdRecord(buf)
	if err != nil {
		return nil, err.Error(), buf, nil
	}
	size, ok := dataSize[id]
	switch {
	case rec.ID != id:
		return nil, fmt.Sprintf("record names queue ID %s", rec.ID), buf, nil
	case !ok:
		return nil, "data file missing", buf, nil
	case size != rec.DataSize:
		return nil, fmt.Sprintf("data file has %d bytes, record says %d", size, rec.DataSize), buf, nil
	}
	return rec, "", buf, nil
}

// setAside moves a message's files into corrupt/ for a human to inspect.
func (q *Queue) setAside(id ID, reason string) error {
	s := q.spool
	dir := filepath.Join(s.dir, corruptDir)
	if err := s.fs.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("queue: recover: %w", err)
	}
	for _, name := range []string{string(id) + extRecord, string(id) + extData} {
		err := s.fs.Rename(filepath.Join(s.dir, name), filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("queue: recover: %w", err)
		}
	}
	q.logCorrupt(id, reason)
	return nil
}

// add registers a committed or recovered message and schedules it unless
// it is held.
func (q *Queue) add(m *message) {
	q.mu.Lock()
	q.msgs[m.id] = m
	if !m.rec.Held {
		q.scheduleLocked(m, m.rec.NextAttempt)
	}
	q.mu.Unlock()
	q.nudge()
}

// nudge wakes the scheduler without blocking.
func (q *Queue) nudge() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// openData returns the message as delivered: header, then the data file.
func (q *Queue) openData(id ID, header []byte) (*messageReader, error) {
	f, err := q.spool.openData(id)
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", id, err)
	}
	return newMessageReader(header, f, func() error { return q.spool.closeData(id, f) }), nil
}
