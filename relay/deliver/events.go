package deliver

import (
	"context"
	"fmt"
	"log/slog"

	"smarthost/queue"
	"smarthost/queue/mlog"
)

// The deliverer's log vocabulary. The queue logs delivered and deferred
// from the Results; this package adds only per-command traces at Debug,
// tls_fallback at Info, and recovered panics.

// debugMsg is the message of every per-command trace line.
const debugMsg = "smtp_client"

// debug traces one step of a connection, keyed by conn_id.
func (d *Deliverer) debug(c *conn, stage string, args ...any) {
	if !d.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := append([]any{mlog.QueueID, string(c.queueID), mlog.ConnID, c.id, mlog.Stage, stage, mlog.MX, c.mx, mlog.TLS, tlsOrNone(c.tls)}, args...)
	d.log.Debug(debugMsg, attrs...)
}

// tls_fallback: STARTTLS was offered but failed, and the message goes in
// plain text because the policy is "may".
func (d *Deliverer) logTLSFallback(id queue.ID, host string, reason error) {
	d.log.LogAttrs(context.Background(), slog.LevelInfo, mlog.TLSFallback,
		slog.String(mlog.QueueID, string(id)),
		slog.String(mlog.MX, host),
		slog.String(mlog.Reason, reason.Error()),
	)
}

// panic: a delivery panicked; its recipients are deferred.
func (d *Deliverer) logPanic(id queue.ID, v any, stack []byte) {
	d.log.LogAttrs(context.Background(), slog.LevelError, mlog.Panic,
		slog.String(mlog.QueueID, string(id)),
		slog.String(mlog.Error, fmt.Sprint(v)),
		slog.String(mlog.Stack, string(stack)),
	)
}

func tlsOrNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}
