package queue

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The admin operations do the jobs of mailq (List), postcat (Show),
// postqueue -f / -i (Flush) and postsuper -d / -h / -H (Delete, Hold,
// Release). queue/control serves them on the control socket.

// Summary is one queued message as mailq shows it.
type Summary struct {
	ID      ID        `json:"id"`
	Size    int64     `json:"size"` // bytes as delivered, prepended header included
	Arrival time.Time `json:"arrival"`
	From    string    `json:"from"` // "" is the null sender
	// Recipients are in RCPT order, with their state; delivered ones stay
	// listed until the message leaves the queue.
	Recipients  []Recipient `json:"recipients"`
	Attempts    int         `json:"attempts"`
	NextAttempt time.Time   `json:"next_attempt,omitzero"`
	Held        bool        `json:"held,omitempty"`
	// Active is true while a delivery attempt is running (Postfix's
	// active queue, the '*' in mailq output).
	Active bool `json:"active,omitempty"`
}

// Detail is everything about one queued message, as postcat shows it.
type Detail struct {
	Summary
	UTF8     bool   `json:"utf8,omitempty"`
	EightBit bool   `json:"eight_bit,omitempty"`
	Origin   Origin `json:"origin"`
	// History holds the outcomes of the latest attempts, oldest first.
	History []Attempt `json:"history,omitempty"`
	// Header is the header section as it will be delivered: the prepended
	// header, then the message's own, up to 256 KiB. Never the body.
	Header string `json:"header"`
}

func summarize(rec *record, active bool) Summary {
	c := rec.clone()
	return Summary{ID: c.ID, Size: c.size(), Arrival: c.Arrival, From: c.From, Recipients: c.Recipients,
		Attempts: c.Attempts, NextAttempt: c.NextAttempt, Held: c.Held, Active: active}
}

// Stats is the queue at a glance, for metrics.
type Stats struct {
	Messages int       // messages in the queue, held ones included
	Oldest   time.Time // arrival of the oldest; zero when empty
}

// Stats counts the queued messages without copying their records, so a
// metrics scrape stays cheap with many messages queued.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	ms := make([]*message, 0, len(q.msgs))
	for _, m := range q.msgs {
		ms = append(ms, m)
	}
	q.mu.Unlock()
	var st Stats
	for _, m := range ms {
		m.mu.Lock()
		if !m.gone {
			st.Messages++
			if st.Oldest.IsZero() || m.rec.Arrival.Before(st.Oldest) {
				st.Oldest = m.rec.Arrival
			}
		}
		m.mu.Unlock()
	}
	return st
}

// List returns every queued message, oldest first.
func (q *Queue) List() []Summary {
	type entry struct {
		m      *message
		active bool
	}
	q.mu.Lock()
	entries := make([]entry, 0, len(q.msgs))
	for _, m := range q.msgs {
		entries = append(entries, entry{m, m.active})
	}
	q.mu.Unlock()
	out := make([]Summary, 0, len(entries))
	for _, e := range entries {
		e.m.mu.Lock()
		if !e.m.gone {
			out = append(out, summarize(e.m.rec, e.active))
		}
		e.m.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Arrival.Equal(out[j].Arrival) {
			return out[i].Arrival.Before(out[j].Arrival)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Show returns one message's envelope, recipient states, attempt history
// and header. It fails with [ErrNotFound] for an unknown ID.
func (q *Queue) Show(id ID) (Detail, error) {
	m, active, err := q.lookup(id)
	if err != nil {
		return Detail{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		return Detail{}, notFound(id)
	}
	rec := m.rec.clone()
	if rec.cold {
		if rec, err = q.spool.warm(rec); err != nil {
			return Detail{}, fmt.Errorf("queue: show %s: %w", id, err)
		}
	}
	header, err := q.originalHeader(rec)
	if err != nil {
		return Detail{}, fmt.Errorf("queue: show %s: %w", id, err)
	}
	return Detail{Summary: summarize(rec, active), UTF8: rec.UTF8, EightBit: rec.EightBit,
		Origin: rec.Origin, History: rec.History, Header: string(header)}, nil
}

// Flush makes messages due now, like postqueue -f (no IDs: every message
// not on hold) and postqueue -i (the given IDs). A message whose attempt
// is running is left alone. A held ID fails with [ErrHeld], an unknown one
// with [ErrNotFound]; the other IDs are still flushed.
func (q *Queue) Flush(ids ...ID) error {
	now := q.now()
	if len(ids) == 0 {
		q.mu.Lock()
		for _, m := range append(schedule(nil), q.sched...) {
			q.scheduleLocked(m, now)
		}
		q.mu.Unlock()
		q.nudge()
		return nil
	}
	var errs []error
	for _, id := range ids {
		m, _, err := q.lookup(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.mu.Lock()
		switch {
		case m.gone:
			errs = append(errs, notFound(id))
		case m.rec.Held:
			errs = append(errs, fmt.Errorf("queue: flush %s: %w", id, ErrHeld))
		default:
			q.mu.Lock()
			if m.index >= 0 {
				q.scheduleLocked(m, now)
			}
			q.mu.Unlock()
		}
		m.mu.Unlock()
	}
	q.nudge()
	return errors.Join(errs...)
}

// FlushDomain makes due now every message that still has a recipient at
// domain (exact match, case-insensitive), like Postfix's postqueue -s: the
// home server's start-up script can push the mail that waited while it
// was down. Held messages stay held. It returns how many it flushed.
func (q *Queue) FlushDomain(domain string) int {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	now := q.now()
	n := 0
	q.mu.Lock()
	due := append(schedule(nil), q.sched...)
	q.mu.Unlock()
	for _, m := range due {
		m.mu.Lock()
		if !m.gone && !m.rec.Held && hasPendingAt(m.rec, domain) {
			q.mu.Lock()
			if m.index >= 0 {
				q.scheduleLocked(m, now)
				n++
			}
			q.mu.Unlock()
		}
		m.mu.Unlock()
	}
	q.nudge()
	return n
}

// hasPendingAt reports whether rec has a recipient at domain still to be
// delivered.
func hasPendingAt(rec *record, domain string) bool {
	for _, r := range rec.Recipients {
		if !r.due() {
			continue
		}
		if at := strings.LastIndexByte(r.Address, '@'); at >= 0 && strings.EqualFold(r.Address[at+1:], domain) {
			return true
		}
	}
	return false
}

// Delete removes messages without delivering them and without a DSN, like
// postsuper -d. An unknown ID fails with [ErrNotFound]; the others are
// still deleted. An attempt in flight finishes, but its outcome is not
// recorded.
func (q *Queue) Delete(ids ...ID) error {
	var errs []error
	for _, id := range ids {
		if err := q.delete(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeleteAll deletes every queued message (postsuper -d ALL) and returns how
// many it deleted.
func (q *Queue) DeleteAll() (int, error) {
	q.mu.Lock()
	ids := make([]ID, 0, len(q.msgs))
	for id := range q.msgs {
		ids = append(ids, id)
	}
	q.mu.Unlock()
	n := 0
	var errs []error
	for _, id := range ids {
		switch err := q.delete(id); {
		case err == nil:
			n++
		case !errors.Is(err, ErrNotFound): // not found: removed meanwhile
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func (q *Queue) delete(id ID) error {
	m, _, err := q.lookup(id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		return notFound(id)
	}
	if err := q.spool.removeMessage(id, m.rec.DataSize); err != nil {
		return fmt.Errorf("queue: delete %s: %w", id, err)
	}
	m.gone = true
	q.mu.Lock()
	q.unscheduleLocked(m)
	delete(q.msgs, id)
	q.mu.Unlock()
	q.logDeleted(id)
	return nil
}

// Hold puts a message on hold, like postsuper -h: it is not attempted until
// released. Holding a held message does nothing. The change is durable.
func (q *Queue) Hold(id ID) error {
	return q.setHeld(id, true)
}

// Release takes a message off hold, like postsuper -H: it is attempted at
// its next attempt time, or at once if that has passed. Releasing a message
// that is not held does nothing. The change is durable.
func (q *Queue) Release(id ID) error {
	return q.setHeld(id, false)
}

func (q *Queue) setHeld(id ID, held bool) error {
	m, _, err := q.lookup(id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gone {
		return notFound(id)
	}
	if m.rec.Held == held {
		return nil
	}
	m.rec.Held = held
	if err := q.spool.writeRecord(m.rec); err != nil {
		// The new record may have been renamed into place before the
		// failure (a failed directory fsync): put the old state back on
		// disk too, so a restart agrees with what the caller was told.
		m.rec.Held = !held
		q.spool.writeRecord(m.rec)
		return err
	}
	q.mu.Lock()
	switch {
	case held:
		q.unscheduleLocked(m)
	case !m.active:
		// An active message is rescheduled when its attempt finishes.
		q.scheduleLocked(m, m.rec.NextAttempt)
	}
	q.mu.Unlock()
	if held {
		q.logHeld(id)
	} else {
		q.logReleased(id)
		q.nudge()
	}
	return nil
}

// lookup finds a message by ID and reports whether an attempt is running.
func (q *Queue) lookup(id ID) (*message, bool, error) {
	if !id.Valid() {
		return nil, false, fmt.Errorf("queue: invalid queue ID %q: %w", id, ErrNotFound)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs[id]
	if m == nil {
		return nil, false, notFound(id)
	}
	return m, m.active, nil
}

func notFound(id ID) error { return fmt.Errorf("queue: %s: %w", id, ErrNotFound) }
