package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"smarthost/auth"
	"smarthost/config"
	"smarthost/relay/load"
)

// BenchmarkRelay is the whole relay in one process, as the benchmark
// script (.ci/bench/run) runs it between smtp-source and smtp-sink:
// relay/load's generator submits over 20 sessions (plain text from a
// trusted network, or implicit TLS with AUTH PLAIN, ten messages a
// session), smarthost signs with RSA-2048, queues with fsync and delivers
// to relay/load's sink, and a message counts when the sink has it. Run it
// with -cpuprofile for the profile of a message's whole life (the
// generator's and sink's share shows under relay/load).
func BenchmarkRelay(b *testing.B) {
	for _, c := range []struct {
		tls  config.TLSMode
		size int
	}{
		{config.TLSNone, 1 << 10},
		{config.TLSNone, 100 << 10},
		{config.TLSImplicit, 1 << 10},
	} {
		b.Run(fmt.Sprintf("%s/%dKiB", map[config.TLSMode]string{config.TLSNone: "plain", config.TLSImplicit: "tls+auth"}[c.tls], c.size>>10), func(b *testing.B) {
			r := startBenchRelay(b)
			o := load.Options{Addr: r.plain, Messages: b.N, Sessions: 20, Size: c.size, PerSession: 10,
				From: "alice@example.com", To: "bob@example.net"}
			if c.tls == config.TLSImplicit {
				o.Addr, o.TLS, o.User, o.Password = r.tls, config.TLSImplicit, "alice", "bench-password"
			}
			b.SetBytes(int64(c.size))
			b.ResetTimer()
			start := time.Now()
			res, err := load.Run(context.Background(), o)
			if err != nil || res.Failed > 0 {
				b.Fatalf("load.Run: %v, %s", err, res)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := r.sink.Wait(ctx, int64(b.N)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
		})
	}
}

type benchRelay struct {
	plain, tls string
	sink       *load.Sink
}

// startBenchRelay runs a server with a plain and an implicit-TLS
// submission listener, one RSA-2048 DKIM key for example.com, one user,
// and every recipient routed to a sink on loopback.
func startBenchRelay(b *testing.B) benchRelay {
	b.Helper()
	dir := b.TempDir()
	sink, err := load.NewSink(load.SinkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sl := listen(b)
	go sink.Serve(sl)
	b.Cleanup(func() { sink.Close() })
	users := filepath.Join(dir, "users")
	if err := (auth.UsersFile{Path: users}).Add("alice", "bench-password"); err != nil {
		b.Fatal(err)
	}
	key, err := filepath.Abs("dkim/testdata/rsa2048.pem")
	if err != nil {
		b.Fatal(err)
	}
	plain, tls := listen(b), listen(b)
	src := fmt.Sprintf(`hostname = "mail.example.org"
state_dir = %q
trusted_networks = ["127.0.0.0/8"]
[tls]
self_signed = true
[[listener]]
name = "plain"
address = %q
tls = "none"
role = "submission"
[[listener]]
name = "submissions"
address = %q
tls = "implicit"
role = "submission"
[auth]
users_file = %q
[[dkim.key]]
domain = "example.com"
selector = "bench"
private_key = %q
[transport]
"*" = "smtp:[127.0.0.1]:%d"
[dns]
server = "127.0.0.1:9"
[limits]
max_connections_per_ip = 100
`, filepath.Join(dir, "state"), plain.Addr(), tls.Addr(), users, key, sl.Addr().(*net.TCPAddr).Port)
	path := filepath.Join(dir, "smarthost.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler),
		Listeners: map[string]net.Listener{"plain": plain, "submissions": tls}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()
	b.Cleanup(func() { cancel(); <-done })
	return benchRelay{plain: plain.Addr().String(), tls: tls.Addr().String(), sink: sink}
}

func listen(b *testing.B) net.Listener {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return l
}
