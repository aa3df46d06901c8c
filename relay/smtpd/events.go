package smtpd

import (
	"context"
	"fmt"
	"log/slog"

	"smarthost/queue/mlog"
	"smarthost/relay/reply"
)

// The session's log vocabulary: one helper per event, so every line of a
// kind has the same message and keys (see queue/mlog). Event lines use the
// listener's logger without conn_id, so their layout stays stable for
// fail2ban and log parsers; per-command Debug traces carry conn_id.

// received: a message was queued and the client was told 250.
func (s *session) logReceived(id string, env envelopeSummary) {
	s.o.Logger.LogAttrs(context.Background(), slog.LevelInfo, mlog.Received,
		slog.String(mlog.QueueID, id),
		slog.String(mlog.From, env.from),
		slog.Int(mlog.RcptCount, env.rcptCount),
		slog.Int64(mlog.Size, env.size),
		slog.String(mlog.ClientIP, s.clientIP.String()),
		slog.String(mlog.User, s.authUser()),
		slog.String(mlog.TLS, s.tlsSummary()),
		slog.String(mlog.DKIMDomain, env.dkimDomain),
		slog.String(mlog.Checks, env.checks),
		slog.String(mlog.Listener, s.srv.name),
	)
}

type envelopeSummary struct {
	from       string
	rcptCount  int
	size       int64
	dkimDomain string
	checks     string // inbound check results, e.g. "spf=pass dkim=pass dmarc=pass"
}

// rejected: a command or a message was refused. reason is for the log only.
func (s *session) logRejected(queueID, stage string, r reply.Reply, reason string, extra ...slog.Attr) {
	if queueID == "" {
		queueID = mlog.NoQueue
	}
	attrs := []slog.Attr{
		slog.String(mlog.QueueID, queueID),
		slog.String(mlog.Stage, stage),
		slog.Int(mlog.Code, r.Code),
		slog.String(mlog.Enhanced, enhanced(r)),
		slog.String(mlog.Reason, reason),
		slog.String(mlog.ClientIP, s.clientIP.String()),
		slog.String(mlog.Listener, s.srv.name),
	}
	s.o.Logger.LogAttrs(context.Background(), slog.LevelInfo, mlog.Rejected, append(attrs, extra...)...)
}

// auth_failed: one failed login. The systemd/ fail2ban filter matches this
// line by its message and client_ip key; a test pins the format.
func (s *session) logAuthFailed(mechanism, username string, r reply.Reply) {
	s.o.Logger.LogAttrs(context.Background(), slog.LevelWarn, mlog.AuthFailed,
		slog.String(mlog.QueueID, mlog.NoQueue),
		slog.String(mlog.ClientIP, s.clientIP.String()),
		slog.String(mlog.Mechanism, mechanism),
		slog.String(mlog.User, username),
		slog.Int(mlog.Code, r.Code),
		slog.String(mlog.Listener, s.srv.name),
	)
}

// auth_banned: a client IP reached max_failures and is refused until then.
func (s *session) logAuthBanned(until string) {
	s.o.Logger.LogAttrs(context.Background(), slog.LevelWarn, mlog.AuthBanned,
		slog.String(mlog.QueueID, mlog.NoQueue),
		slog.String(mlog.ClientIP, s.clientIP.String()),
		slog.String(mlog.BanUntil, until),
		slog.String(mlog.Listener, s.srv.name),
	)
}

// connection refused before the SMTP dialogue (limits or ban).
func (srv *Server) logRefused(ip string, r reply.Reply, reason string) {
	srv.opts().Logger.LogAttrs(context.Background(), slog.LevelInfo, mlog.Rejected,
		slog.String(mlog.QueueID, mlog.NoQueue),
		slog.String(mlog.Stage, "connect"),
		slog.Int(mlog.Code, r.Code),
		slog.String(mlog.Enhanced, enhanced(r)),
		slog.String(mlog.Reason, reason),
		slog.String(mlog.ClientIP, ip),
		slog.String(mlog.Listener, srv.name),
	)
}

func enhanced(r reply.Reply) string {
	return fmt.Sprintf("%d.%d.%d", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2])
}
