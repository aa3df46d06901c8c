package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"

	"smarthost/relay/demo"
)

// runDemo runs the whole path on loopback with no setup; exit 0 means every
// step passed.
func runDemo(args []string, io stdio) error {
	fs := newFlagSet("demo", "demo [-v]", io)
	verbose := fs.Bool("v", false, "also print smarthost's log lines")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(io.err, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := demo.Run(ctx, demo.Options{Out: io.out, Logger: logger}); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	return nil
}
