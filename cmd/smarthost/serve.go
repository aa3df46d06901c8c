package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"smarthost/config"
	"smarthost/queue/mlog"
	"smarthost/relay"
)

// drainTime is how long SIGTERM lets sessions finish before closing them.
const drainTime = 30 * time.Second

// runServe runs the relay until SIGTERM or SIGINT; SIGHUP reloads the
// configuration, keeping the old one when the new one has problems.
func runServe(args []string, io stdio) error {
	fs := newFlagSet("serve", "serve [-config FILE] [-log-level debug|info|warn]", io)
	path := configFlag(fs)
	level := fs.String("log-level", "info", "least important log `level` shown: debug, info, warn or error")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("bad -log-level %q", *level)}
	}
	logger := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: lv}))

	cfg, warnings, err := config.Load(*path)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	for _, w := range warnings {
		logger.Warn(mlog.ConfigWarning, slog.String(mlog.Problem, w.String()))
	}
	srv, err := relay.New(relay.Options{Config: cfg, Logger: logger})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(srv, *path, logger)
			}
		}
	}()
	return srv.Run(ctx, drainTime)
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
