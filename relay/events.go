package relay

import (
	"log/slog"

	"smarthost/queue/mlog"
)

// The server's life-cycle log lines; message events are logged by
// relay/smtpd and queue.

func (s *Server) logListening(l listener) {
	s.log.Info(mlog.Listening,
		slog.String(mlog.Listener, l.cfg.Name),
		slog.String(mlog.Address, l.ln.Addr().String()),
		slog.String(mlog.Role, string(l.cfg.Role)),
		slog.String(mlog.TLS, string(l.cfg.TLS)))
}

func (s *Server) logNeedsRestart(key string) {
	s.log.Warn(mlog.NeedsRestart, slog.String(mlog.Key, key))
}

func (s *Server) logReloaded(file string) {
	s.log.Info(mlog.Reloaded, slog.String(mlog.File, file))
}

func logUsersFileMissing(log *slog.Logger, file string) {
	log.Warn(mlog.UsersFileMissing, slog.String(mlog.File, file))
}
