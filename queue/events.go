package queue

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"smarthost/queue/mlog"
)

// The queue's mail log: one helper per event, one Info line per message
// event, always with queue_id, so the whole vocabulary is on this page.
// Message bodies are never logged.

func (q *Queue) info(msg string, id ID, attrs ...slog.Attr) {
	q.log.LogAttrs(context.Background(), slog.LevelInfo, msg, append([]slog.Attr{slog.String(mlog.QueueID, string(id))}, attrs...)...)
}

// attemptAttrs are the attributes of one recipient's attempt outcome.
func attemptAttrs(res Result, status string, attempt int, delay time.Duration) []slog.Attr {
	tls := res.TLS
	if tls == "" {
		tls = "none"
	}
	attrs := []slog.Attr{
		slog.String(mlog.Rcpt, res.Recipient),
		slog.String(mlog.NextHop, res.NextHop),
		slog.String(mlog.MX, res.MX),
	}
	if code := replyCode(res.Reply); code != 0 {
		attrs = append(attrs, slog.Int(mlog.Code, code))
	}
	return append(attrs,
		slog.String(mlog.Enhanced, status),
		slog.String(mlog.Reply, res.Reply),
		slog.String(mlog.TLS, tls),
		slog.Int(mlog.Attempt, attempt),
		slog.Float64(mlog.Delay, seconds(delay)),
	)
}

// seconds is a delay for the log: seconds to the millisecond, as Postfix's
// delay= field.
func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// logDelivered: the next hop accepted a recipient.
func (q *Queue) logDelivered(id ID, res Result, status string, attempt int, delay time.Duration) {
	q.info(mlog.Delivered, id, attemptAttrs(res, status, attempt, delay)...)
}

// logDeferred: a recipient failed temporarily and waits for next.
func (q *Queue) logDeferred(id ID, res Result, status string, attempt int, delay time.Duration, next time.Time) {
	attrs := append(attemptAttrs(res, status, attempt, delay), slog.String(mlog.NextAttempt, next.UTC().Format(time.RFC3339)))
	q.info(mlog.Deferred, id, attrs...)
}

// logBounced: a recipient failed permanently; dsnID is "" when no DSN was
// queued (null sender, or queueing it failed and will be retried).
func (q *Queue) logBounced(id ID, res Result, status string, attempt int, delay time.Duration, dsnID ID) {
	attrs := attemptAttrs(res, status, attempt, delay)
	if dsnID != "" {
		attrs = append(attrs, slog.String(mlog.DSNID, string(dsnID)))
	}
	q.info(mlog.Bounced, id, attrs...)
}

// logExpired: a deferred recipient reached max_lifetime.
func (q *Queue) logExpired(id ID, r *Recipient, delay time.Duration, dsnID ID) {
	attrs := []slog.Attr{
		slog.String(mlog.Rcpt, r.Address),
		slog.String(mlog.Enhanced, r.Status),
		slog.String(mlog.Reply, r.Reply),
		slog.Float64(mlog.Delay, seconds(delay)),
	}
	if dsnID != "" {
		attrs = append(attrs, slog.String(mlog.DSNID, string(dsnID)))
	}
	q.info(mlog.Expired, id, attrs...)
}

// logDSNQueued: a DSN for count failed recipients of id was queued as dsnID.
func (q *Queue) logDSNQueued(id, dsnID ID, count int) {
	q.info(mlog.DSNQueued, id, slog.String(mlog.DSNID, string(dsnID)), slog.Int(mlog.RcptCount, count))
}

// logRemoved: every recipient is done; the message left the queue.
func (q *Queue) logRemoved(id ID) { q.info(mlog.Removed, id) }

// logHeld, logReleased and logDeleted: administrator actions.
func (q *Queue) logHeld(id ID)     { q.info(mlog.Held, id) }
func (q *Queue) logReleased(id ID) { q.info(mlog.Released, id) }
func (q *Queue) logDeleted(id ID)  { q.info(mlog.Deleted, id) }

// logRecovered: the spool was loaded at start-up.
func (q *Queue) logRecovered(count int) {
	q.info(mlog.Recovered, mlog.NoQueue, slog.Int(mlog.Count, count))
}

// logCorrupt: recovery moved a message's files to corrupt/.
func (q *Queue) logCorrupt(id ID, reason string) {
	q.log.LogAttrs(context.Background(), slog.LevelError, mlog.Corrupt,
		slog.String(mlog.QueueID, string(id)), slog.String(mlog.Reason, reason))
}

// logSpoolError: a state change could not be written; the queue goes on
// with the state it holds in memory.
func (q *Queue) logSpoolError(id ID, err error) {
	q.log.LogAttrs(context.Background(), slog.LevelError, mlog.SpoolError,
		slog.String(mlog.QueueID, string(id)), slog.String(mlog.Error, err.Error()))
}

// logPanic: the deliverer panicked; the attempt counts as a temporary
// failure.
func (q *Queue) logPanic(id ID, p any, stack []byte) {
	q.log.LogAttrs(context.Background(), slog.LevelError, mlog.Panic,
		slog.String(mlog.QueueID, string(id)), slog.String(mlog.Error, fmt.Sprint(p)), slog.String(mlog.Stack, string(stack)))
}
