// Command smtpload is the benchmark's load tool. It parses flags and calls
// relay/load, which holds the logic.
//
//	smtpload send -addr HOST:PORT [-tls none|starttls|implicit] [-user U -password P]
//	              [-n MESSAGES] [-c SESSIONS] [-m PER-SESSION] [-size 1KiB] …
//	smtpload sink -addr HOST:PORT [-starttls [-cert F -key F]] [-fsync -dir D] [-count N]
//
// Both print one machine-readable result line on stdout (key=value pairs):
// send when every message is sent, sink when -count messages have arrived
// or on SIGINT/SIGTERM. send exits 1 when any message failed.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"smarthost/config"
	"smarthost/relay/certs"
	"smarthost/relay/load"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, out, errOut io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(errOut, "usage: smtpload send|sink [flags]  (smtpload send -h, smtpload sink -h)")
		return 2
	}
	var err error
	switch args[0] {
	case "send":
		err = runSend(args[1:], out, errOut)
	case "sink":
		err = runSink(args[1:], out, errOut)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(errOut, "usage: smtpload send|sink [flags]  (smtpload send -h, smtpload sink -h)")
		return 0
	default:
		fmt.Fprintf(errOut, "smtpload: unknown command %q; use send or sink\n", args[0])
		return 2
	}
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		return exit.code
	default:
		fmt.Fprintln(errOut, "smtpload:", err)
		return 1
	}
}

// exitError is an exit status whose reason has been printed already.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// parse parses the flags; the flag package has already explained a bad
// one, which exits 2.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return &exitError{code: 2}
	}
	return err
}

// sizeFlag is a message size such as 1024, 1KiB, 100KiB or 10MiB.
type sizeFlag struct{ bytes int64 }

func (s *sizeFlag) String() string { return fmt.Sprint(s.bytes) }
func (s *sizeFlag) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	s.bytes = n
	return nil
}

func runSend(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("smtpload send", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var o load.Options
	size := sizeFlag{bytes: 1 << 10}
	tlsMode := fs.String("tls", "none", "TLS: none, starttls or implicit")
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:25", "server `host:port`")
	fs.BoolVar(&o.NoResume, "no-resume", false, "no TLS session resumption (a full handshake per session)")
	fs.StringVar(&o.User, "user", "", "AUTH PLAIN as this user")
	fs.StringVar(&o.Password, "password", "", "the user's password")
	fs.IntVar(&o.Messages, "n", 1000, "messages to send in all")
	fs.IntVar(&o.Sessions, "c", 20, "concurrent sessions")
	fs.IntVar(&o.PerSession, "m", 0, "messages per session before QUIT (0: no limit)")
	fs.Var(&size, "size", "message size, header included (e.g. 1KiB, 100KiB, 10MiB)")
	fs.StringVar(&o.From, "from", "load@example.com", "envelope sender and From: address")
	fs.StringVar(&o.To, "to", "sink@example.net", "envelope recipient and To: address")
	fs.StringVar(&o.Helo, "helo", "smtpload.example", "EHLO name")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "timeout per command")
	if err := parse(fs, args); err != nil {
		return err
	}
	// The server's certificate is not verified: the tool measures servers
	// on loopback with throw-away certificates.
	o.TLS, o.Size = config.TLSMode(*tlsMode), int(size.bytes)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, res)
	if res.Failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func runSink(args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("smtpload sink", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var o load.SinkOptions
	addr := fs.String("addr", "127.0.0.1:2525", "listen on `host:port`")
	starttls := fs.Bool("starttls", false, "offer STARTTLS (with -cert and -key, or a throw-away self-signed certificate)")
	certFile := fs.String("cert", "", "certificate chain, PEM")
	keyFile := fs.String("key", "", "private key, PEM")
	count := fs.Int64("count", 0, "exit after this many messages (0: run until SIGINT or SIGTERM)")
	fs.BoolVar(&o.Fsync, "fsync", false, "write each message to a file in -dir and fsync it before 250")
	fs.StringVar(&o.Dir, "dir", "", "directory for -fsync")
	fs.StringVar(&o.Hostname, "hostname", "sink.invalid", "name in the greeting")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *starttls {
		c, err := serverConfig(*certFile, *keyFile, o.Hostname)
		if err != nil {
			return err
		}
		o.TLSConfig = c
	}
	s, err := load.NewSink(o)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	fmt.Fprintf(errOut, "smtpload sink: listening on %s\n", l.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *count > 0 {
		_, err = s.Wait(ctx, *count)
	} else {
		<-ctx.Done()
	}
	s.Close()
	if serveErr := <-served; serveErr != nil && err == nil {
		err = serveErr
	}
	fmt.Fprintln(out, s.Stats())
	if *count > 0 && err != nil {
		return err
	}
	return nil
}

func serverConfig(certFile, keyFile, hostname string) (*tls.Config, error) {
	tc := config.TLS{CertFile: certFile, KeyFile: keyFile}
	if certFile == "" && keyFile == "" {
		tc = config.TLS{SelfSigned: true}
	}
	src, err := certs.New(certs.Options{TLS: tc, Hostname: hostname})
	if err != nil {
		return nil, err
	}
	return src.ServerConfig(), nil
}
