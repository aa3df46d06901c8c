package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"
)

// Run is the scheduler. It starts an attempt for each due message, at most
// Options.Concurrency at a time, sleeping until the next message is due or
// until something changes (a commit, a finished attempt, a flush). Each
// attempt calls the Deliverer once with the message's due recipients, then
// records the outcome durably (see [Queue.finish]).
//
// Run returns nil after ctx is done and every attempt in flight has
// returned; attempts see ctx and should stop promptly. An attempt cut
// short this way does not count against the retry schedule. Run may be
// called only once.
func (q *Queue) Run(ctx context.Context) error {
	q.mu.Lock()
	if q.started {
		q.mu.Unlock()
		return errors.New("queue: Run called twice")
	}
	q.started = true
	q.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var timer <-chan time.Time
		now := q.now()
		q.mu.Lock()
		for q.inflight < q.opts.Concurrency {
			m, next := q.popDueLocked(now)
			if m == nil {
				if !next.IsZero() {
					timer = q.alarm(next)
				}
				break
			}
			m.active = true
			q.inflight++
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.attempt(ctx, m)
			}()
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-timer:
		}
	}
}

// attempt runs one delivery attempt of m and records its outcome.
func (q *Queue) attempt(ctx context.Context, m *message) {
	m.mu.Lock()
	if m.gone {
		q.release(m, nil)
		m.mu.Unlock()
		return
	}
	rec := m.rec
	d := &Delivery{
		ID:       m.id,
		From:     rec.From,
		UTF8:     rec.UTF8,
		EightBit: rec.EightBit,
		Size:     rec.size(),
		Attempt:  rec.Attempts + 1,
		Arrival:  rec.Arrival,
	}
	for _, r := range rec.Recipients {
		if r.due() {
			d.Recipients = append(d.Recipients, r.Address)
		}
	}
	// The header never changes after Commit, so the reader may share it;
	// when it is on disk only, it is read when the delivery opens the
	// message.
	id, header, headerLen, cold := m.id, rec.Header, rec.headerLen, rec.cold
	d.Open = func() (io.ReadCloser, error) {
		h := header
		if cold {
			var err error
			if h, _, err = q.spool.readCold(id, headerLen); err != nil {
				return nil, err
			}
		}
		return q.openData(id, h)
	}
	m.mu.Unlock()

	var results []Result
	if len(d.Recipients) > 0 {
		results = q.deliver(ctx, d)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		// Deleted while in flight, as postsuper -d may do to an active
		// message: whatever the attempt did, nothing is left to record.
		q.release(m, nil)
		return
	}
	q.finish(ctx, m, d, results)
}

// release ends m's attempt: it frees the slot and, when due is non-nil,
// schedules m again; a message that is gone is forgotten. m.mu is held.
func (q *Queue) release(m *message, due *time.Time) {
	q.mu.Lock()
	q.inflight--
	m.active = false
	switch {
	case due != nil:
		q.scheduleLocked(m, *due)
	case m.gone:
		delete(q.msgs, m.id)
	}
	q.mu.Unlock()
	q.nudge()
}

// deliver calls the Deliverer, turning a panic into a temporary failure
// of every recipient: one bad message must not stop the queue.
func (q *Queue) deliver(ctx context.Context, d *Delivery) (results []Result) {
	defer func() {
		if p := recover(); p != nil {
			q.logPanic(d.ID, p, debug.Stack())
			results = make([]Result, len(d.Recipients))
			for i, r := range d.Recipients {
				results[i] = Result{Recipient: r, Err: fmt.Errorf("queue: deliverer panicked: %v", p),
					Reply: "internal error during delivery"}
			}
		}
	}()
	return q.opts.Deliverer.Deliver(ctx, d)
}
