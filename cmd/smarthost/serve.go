package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"smarthost/config"
	"smarthost/queue/mlog"
	"smarthost/relay"
	"smarthost/relay/metrics"
	"smarthost/relay/sdnotify"
)

// drainTime is how long SIGTERM lets sessions finish before closing them.
const drainTime = 30 * time.Second

// runServe runs the relay until SIGTERM or SIGINT; SIGHUP reloads the
// configuration, keeping the old one when the new one has problems.
func runServe(args []string, std stdio) error {
	fs := newFlagSet("serve", "serve [-config FILE] [-log-level debug|info|warn]", std)
	path := configFlag(fs)
	level := fs.String("log-level", "info", "least important log `level` shown: debug, info, warn or error")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("bad -log-level %q", *level)}
	}
	cfg, warnings, err := config.Load(*path)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	reg := metrics.New()
	logger := slog.New(reg.Handler(logHandler(std.err, lv, os.Getenv("JOURNAL_STREAM") != "")))
	for _, w := range warnings {
		logger.Warn(mlog.ConfigWarning, slog.String(mlog.Problem, w.String()))
	}
	srv, err := relay.New(relay.Options{Config: cfg, Logger: logger, Metrics: reg})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}

	notify := sdnotify.New(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopping := make(chan struct{})
	go func() {
		defer close(stopping)
		for {
			select {
			case <-ctx.Done():
				// Shutdown starts now; Run drains sessions after this.
				notify.Stopping()
				return
			case <-hup:
				notify.Reloading()
				reload(srv, *path, logger)
				notify.Ready()
			}
		}
	}()
	go notify.Watchdog(ctx, func() bool { return true })
	// The listeners are bound already (relay.New); connections wait in
	// the kernel's backlog until Run accepts them.
	notify.Ready()
	err = srv.Run(ctx, drainTime)
	stop()
	<-stopping // STOPPING=1 is sent before the process exits
	return err
}

// logHandler picks the log format: logfmt lines (slog's text handler) in
// both cases, with a timestamp on a terminal or file, and without one under
// journald (JOURNAL_STREAM is set), which stamps every line itself. The
// fail2ban filter in systemd/ matches both.
func logHandler(w io.Writer, level slog.Level, journald bool) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if journald {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.NewTextHandler(w, opts)
}

// reload applies the configuration file again; a broken one is logged,
// problem by problem, and the running configuration is kept.
func reload(srv *relay.Server, path string, logger *slog.Logger) {
	cfg, _, err := config.Load(path)
	if err == nil {
		if problems := relay.Check(cfg); len(problems) > 0 {
			err = &config.Error{Problems: problems}
		}
	}
	if err == nil {
		err = srv.Reload(cfg)
	}
	if err == nil {
		return
	}
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			logger.Error(mlog.ReloadRejected, slog.String(mlog.Problem, p.String()))
		}
		return
	}
	logger.Error(mlog.ReloadRejected, slog.String(mlog.Error, err.Error()))
}
