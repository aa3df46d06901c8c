package smtpd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/relay/dkim"
	"smarthost/relay/load"
)

// queueSpool is relay's adapter: the session writes into the real queue.
type queueSpool struct{ q *queue.Queue }

func (s queueSpool) Create() (Draft, error) { return s.q.Create() }

// discardDeliverer accepts every recipient at once, so the queue removes
// each message as soon as it is committed: the spool stays as small as a
// relay's that keeps up, and its files are recycled (queue's spares).
type discardDeliverer struct{}

func (discardDeliverer) Deliver(_ context.Context, d *queue.Delivery) []queue.Result {
	res := make([]queue.Result, len(d.Recipients))
	for i, r := range d.Recipients {
		res[i] = queue.Result{Recipient: r, Reply: "250 2.0.0 Ok"}
	}
	return res
}

// BenchmarkAccept measures the session's whole DATA path into the durable
// spool over loopback: SMTP dialogue (plain text from a trusted network,
// sessions sending messages back to back), line normalization, DKIM
// signing with the repository's RSA-2048 test key (or none), the spool's
// write, fsync, rename and group commit, and the 250. The queue delivers
// to nowhere at once, so what is measured is the steady state of a relay
// that keeps up. Run it with -cpuprofile to see where a message's time
// goes before delivery.
func BenchmarkAccept(b *testing.B) {
	for _, c := range []struct {
		sign           bool
		size, sessions int
	}{
		{true, 1 << 10, 1},
		{true, 1 << 10, 20},
		{true, 100 << 10, 20},
		{false, 1 << 10, 20},
		{false, 100 << 10, 20},
	} {
		name := fmt.Sprintf("%s/%dKiB/sessions=%d", map[bool]string{true: "RSA2048", false: "unsigned"}[c.sign], c.size>>10, c.sessions)
		b.Run(name, func(b *testing.B) {
			addr := startBenchServer(b, c.sign)
			b.SetBytes(int64(c.size))
			b.ResetTimer()
			res, err := load.Run(context.Background(), load.Options{
				Addr: addr, Messages: b.N, Sessions: c.sessions, Size: c.size,
				From: "alice@example.com", To: "bob@example.net",
			})
			b.StopTimer()
			if err != nil || res.Failed > 0 {
				b.Fatalf("load.Run: %v, %s", err, res)
			}
			b.ReportMetric(res.Rate(), "msgs/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
		})
	}
}

// startBenchServer runs a submission listener over a real queue in a
// temporary directory, trusting 127.0.0.0/8, and returns its address.
func startBenchServer(b *testing.B, sign bool) string {
	b.Helper()
	q, err := queue.Open(queue.Options{Dir: filepath.Join(b.TempDir(), "queue"), Hostname: "mail.example.org",
		Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour, Concurrency: 20, Deliverer: discardDeliverer{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	b.Cleanup(func() {
		stop()
		<-done
		q.Close()
	})
	opts := Options{
		Hostname:        "mail.example.org",
		Limits:          config.Default().Limits,
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Spool:           queueSpool{q: q},
		Logger:          slog.New(slog.DiscardHandler),
	}
	if sign {
		pattern, _ := config.ParseAddressPattern("*@example.com")
		opts.DKIM, err = dkim.Load(config.DKIM{Canonicalization: "relaxed/simple", Keys: []config.DKIMKey{
			{Domain: "example.com", Selector: "bench", PrivateKey: "../dkim/testdata/rsa2048.pem", Sign: []config.AddressPattern{pattern}},
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Listener{Name: "bench", Role: config.RoleSubmission, TLS: config.TLSNone}, nil, opts)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}
