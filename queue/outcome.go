package queue

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// finish applies an attempt's results to m and records them, following
// Postfix's queue manager:
//
//  1. Each result moves its recipient to delivered, failed (permanent) or
//     deferred. A missing result counts as a temporary failure. When ctx
//     is done (shutdown) only deliveries count: failures caused by the
//     shutdown neither use a retry step nor expire anything.
//  2. Deferred recipients of a message older than MaxLifetime expire: they
//     fail with the status of their last temporary failure, as Postfix
//     does (Action: failed, Status: 4.x.x).
//  3. One DSN goes to the sender for all recipients that failed and have
//     not been reported yet (never for the null sender). If queueing it
//     fails, the recipients stay unreported and it is retried at the next
//     attempt.
//  4. A message with nothing left to do is removed; otherwise its next
//     attempt is set from the retry schedule and its record rewritten
//     durably.
//  5. The attempt's slot is released, m rescheduled unless held, and only
//     then the outcome logged.
//
// m.mu is held.
func (q *Queue) finish(ctx context.Context, m *message, d *Delivery, results []Result) {
	rec := m.rec
	now := q.now()
	shutdown := ctx.Err() != nil
	attempted := len(d.Recipients) > 0 && !shutdown

	outcomes := applyResults(rec, d.Recipients, results, now, shutdown)
	var expired []*Recipient
	if attempted {
		expired = expire(rec, now, q.opts.MaxLifetime)
		rec.Attempts++
	}
	dsnID := q.notify(rec, now)
	next := q.nextAttempt(rec, now, shutdown)
	removed := q.store(m, outcomes, d.Attempt, now, next)
	q.logOutcome(m.id, rec, attemptSummary{outcomes: outcomes, expired: expired, attempt: d.Attempt,
		delay: now.Sub(rec.Arrival), next: next, dsnID: dsnID, removed: removed})
}

// applyResults moves each recipient of the attempt to the state its result
// gives and returns the outcomes in result order (step 1 of finish).
func applyResults(rec *record, due []string, results []Result, now time.Time, shutdown bool) []outcome {
	byAddr := make(map[string]*Recipient, len(due))
	for _, a := range due {
		for i := range rec.Recipients {
			if rec.Recipients[i].Address == a {
				byAddr[a] = &rec.Recipients[i]
			}
		}
	}
	var outcomes []outcome
	apply := func(res Result) {
		r := byAddr[res.Recipient]
		if r == nil {
			return // not in this attempt, or a second result for it
		}
		delete(byAddr, res.Recipient)
		if res.Err != nil && res.Reply == "" {
			res.Reply = res.Err.Error()
		}
		state := StateDeferred
		switch {
		case res.Err == nil:
			state = StateDelivered
		case res.Permanent:
			state = StateFailed
		case shutdown:
			return
		}
		status := enhancedStatus(res)
		r.State, r.Status, r.Reply, r.RemoteMTA, r.Updated = state, status, res.Reply, res.RemoteMTA, now
		r.Attempts++
		outcomes = append(outcomes, outcome{res, status, state})
	}
	for _, res := range results {
		apply(res)
	}
	if !shutdown {
		for _, a := range due {
			if byAddr[a] != nil {
				apply(Result{Recipient: a, Err: errNoResult, Reply: "deliverer returned no result for this recipient"})
			}
		}
	}
	return outcomes
}

// expire fails the deferred recipients of a message that has been queued
// for lifetime or longer (step 2 of finish) and returns them.
func expire(rec *record, now time.Time, lifetime time.Duration) []*Recipient {
	if now.Before(rec.Arrival.Add(lifetime)) {
		return nil
	}
	var expired []*Recipient
	for i := range rec.Recipients {
		if r := &rec.Recipients[i]; r.State == StateDeferred {
			r.State, r.Expired, r.Updated = StateFailed, true, now
			if r.Status == "" {
				r.Status = "4.4.7" // RFC 3463: delivery time expired
			}
			expired = append(expired, r)
		}
	}
	return expired
}

// store removes a finished message or writes its new state, then ends the
// attempt (step 4 and 5 of finish). It reports whether m was removed.
func (q *Queue) store(m *message, outcomes []outcome, attempt int, now, next time.Time) bool {
	rec := m.rec
	if rec.done() {
		m.gone = true
		if err := q.spool.removeMessage(m.id, rec.DataSize); err != nil {
			// Recovery removes data without a record; a record left
			// behind means a repeated delivery, so say so.
			q.logSpoolError(m.id, err)
		}
		q.release(m, nil)
		return true
	}
	if len(outcomes) > 0 {
		rec.addHistory(historyEntries(outcomes, attempt, now)...)
	}
	rec.NextAttempt = next
	if err := q.spool.writeRecord(rec); err != nil {
		// The outcome stays in memory and is written with the next change;
		// a crash before then repeats deliveries, never loses mail.
		q.logSpoolError(m.id, err)
	} else {
		// The message waits for its retry: its header and history wait on
		// disk.
		rec.makeCold()
	}
	if rec.Held {
		q.release(m, nil)
	} else {
		q.release(m, &next)
	}
	return false
}

// attemptSummary is what logOutcome reports of one attempt.
type attemptSummary struct {
	outcomes []outcome
	expired  []*Recipient
	attempt  int
	delay    time.Duration
	next     time.Time
	dsnID    ID
	removed  bool
}

// logOutcome logs an attempt once its outcome is on disk and the message
// rescheduled. m.mu is still held, so the next attempt's lines cannot
// come first.
func (q *Queue) logOutcome(id ID, rec *record, a attemptSummary) {
	for _, o := range a.outcomes {
		switch o.state {
		case StateDelivered:
			q.logDelivered(id, o.res, o.status, a.attempt, a.delay)
		case StateFailed:
			q.logBounced(id, o.res, o.status, a.attempt, a.delay, dsnIDFor(rec, o.res.Recipient, a.dsnID))
		case StateDeferred:
			if !isExpired(a.expired, o.res.Recipient) {
				q.logDeferred(id, o.res, o.status, a.attempt, a.delay, a.next)
			}
		}
	}
	for _, r := range a.expired {
		q.logExpired(id, r, a.delay, r.DSNID)
	}
	if a.dsnID != "" {
		q.logDSNQueued(id, a.dsnID, countDSN(rec, a.dsnID))
	}
	if a.removed {
		q.logRemoved(id)
	}
}

// errNoResult stands for a recipient the Deliverer returned no Result for.
var errNoResult = &noResultError{}

type noResultError struct{}

func (*noResultError) Error() string { return "queue: deliverer returned no result" }

// nextAttempt is when rec is next due: the retry step for the number of
// attempts made (the last step repeats), but no later than the end of its
// lifetime, so the final attempt happens at max_lifetime rather than up to
// one retry step after it (Postfix bounces at the first failed attempt
// after maximal_queue_lifetime, which may be hours late). A shutdown makes
// it due at once, for the next start.
func (q *Queue) nextAttempt(rec *record, now time.Time, shutdown bool) time.Time {
	if shutdown {
		return now
	}
	i := min(max(rec.Attempts-1, 0), len(q.opts.Retry)-1)
	next := now.Add(q.opts.Retry[i])
	if deadline := rec.Arrival.Add(q.opts.MaxLifetime); next.After(deadline) && deadline.After(now) {
		next = deadline
	}
	return next
}

// notify queues one DSN for every failed recipient not yet reported, marks
// them reported, and returns the DSN's queue ID ("" when none was queued).
// The null sender gets no DSN (RFC 5321 §4.5.5): its failures are only
// logged. m.mu is held.
func (q *Queue) notify(rec *record, now time.Time) ID {
	var failed []*Recipient
	for i := range rec.Recipients {
		if r := &rec.Recipients[i]; r.needsDSN() {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return ""
	}
	if rec.From == "" {
		for _, r := range failed {
			r.Notified = true
		}
		return ""
	}
	id, err := q.bounce(rec, failed, now)
	if err != nil {
		q.logSpoolError(rec.ID, err)
		return ""
	}
	for _, r := range failed {
		r.Notified, r.DSNID = true, id
	}
	return id
}

func dsnIDFor(rec *record, addr string, dsnID ID) ID {
	for i := range rec.Recipients {
		if rec.Recipients[i].Address == addr && rec.Recipients[i].DSNID == dsnID {
			return dsnID
		}
	}
	return ""
}

func countDSN(rec *record, dsnID ID) int {
	n := 0
	for i := range rec.Recipients {
		if rec.Recipients[i].DSNID == dsnID {
			n++
		}
	}
	return n
}

func isExpired(expired []*Recipient, addr string) bool {
	for _, r := range expired {
		if r.Address == addr {
			return true
		}
	}
	return false
}

// outcome is one recipient's result in an attempt.
type outcome struct {
	res    Result
	status string // RFC 3463
	state  RecipientState
}

// historyEntries turns an attempt's outcomes into history entries, one per
// distinct (outcome, next hop, MX, TLS, reply), in the order first seen.
func historyEntries(outcomes []outcome, number int, now time.Time) []Attempt {
	var entries []Attempt
	for _, o := range outcomes {
		found := false
		for i := range entries {
			e := &entries[i]
			if e.Outcome == o.state && e.NextHop == o.res.NextHop && e.MX == o.res.MX && e.TLS == o.res.TLS && e.Reply == o.res.Reply {
				e.Recipients = append(e.Recipients, o.res.Recipient)
				found = true
				break
			}
		}
		if !found {
			entries = append(entries, Attempt{Time: now, Number: number, Recipients: []string{o.res.Recipient},
				Outcome: o.state, NextHop: o.res.NextHop, MX: o.res.MX, TLS: o.res.TLS, Reply: o.res.Reply})
		}
	}
	return entries
}

// enhancedStatus is the RFC 3463 status of a result: its own Enhanced
// field, else the one in its reply ("550 5.1.1 ..."), else the generic
// status of its class.
func enhancedStatus(res Result) string {
	class := byte('4')
	switch {
	case res.Err == nil:
		class = '2'
	case res.Permanent:
		class = '5'
	}
	if validStatus(res.Enhanced, class) {
		return res.Enhanced
	}
	if f := strings.Fields(res.Reply); len(f) >= 2 && validStatus(f[1], class) {
		return f[1]
	}
	return string(class) + ".0.0"
}

// validStatus reports whether s is class.subject.detail (RFC 3463 §2)
// with the given class.
func validStatus(s string, class byte) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] != class {
		return false
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 999 || len(p) > 3 {
			return false
		}
	}
	return true
}

// replyCode is the three-digit code at the start of an SMTP reply, or 0.
func replyCode(reply string) int {
	if len(reply) < 3 {
		return 0
	}
	if len(reply) > 3 && reply[3] != ' ' && reply[3] != '-' {
		return 0
	}
	n, err := strconv.Atoi(reply[:3])
	if err != nil || n < 200 || n > 599 {
		return 0
	}
	return n
}
