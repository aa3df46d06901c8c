package deliver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/relay/resolve"
	"smarthost/relay/resolve/resolvetest"
	"smarthost/relay/route"
	"smarthost/relay/sink"
)

var _ resolve.Resolver = (*resolvetest.Resolver)(nil)

// testNet is the injected dialer: it maps the addresses the deliverer
// dials (MX addresses on port 25, next hops) to loopback listeners, and
// refuses everything else, so no test ever reaches a real network.
type testNet struct {
	mu     sync.Mutex
	routes map[string]string
	dials  []string
}

func newTestNet() *testNet { return &testNet{routes: map[string]string{}} }

// route makes dials to addr go to the listener at target.
func (n *testNet) route(addr, target string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[addr] = target
}

func (n *testNet) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials = append(n.dials, addr)
	target, ok := n.routes[addr]
	n.mu.Unlock()
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

func (n *testNet) Dials() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.dials...)
}

// startSink serves a recording sink on loopback for the test's lifetime.
func startSink(t testing.TB, opts sink.Options) (*sink.Sink, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := sink.New(opts)
	done := make(chan struct{})
	go func() { s.Serve(l); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, l.Addr().String()
}

// testConfig is a validated-looking configuration: hostname, timeouts,
// a transport map and TLS policy.
func testConfig(t testing.TB, transport map[string]string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Hostname = "relay.example.test"
	cfg.Delivery.ConnectTimeout = config.Duration{Duration: 5 * time.Second}
	cfg.Delivery.CommandTimeout = config.Duration{Duration: 5 * time.Second}
	cfg.Transport = map[string]config.NextHop{}
	for k, v := range transport {
		h, err := config.ParseNextHop(v)
		if err != nil {
			t.Fatalf("ParseNextHop(%q): %v", v, err)
		}
		cfg.Transport[k] = h
	}
	return cfg
}

// fakeDNS publishes the MX hosts most tests use. Addresses are from
// TEST-NET-1 and reach a sink only through testNet.
func fakeDNS() *resolvetest.Resolver {
	return &resolvetest.Resolver{
		MX: map[string][]*net.MX{
			"example.test":   {{Host: "mx1.example.test.", Pref: 10}, {Host: "mx2.example.test.", Pref: 20}},
			"other.test":     {{Host: "mx.other.test.", Pref: 10}},
			"null.test":      {{Host: ".", Pref: 0}},
			"secure.test":    {{Host: "mx.secure.test.", Pref: 10}},
			"mx1only.test":   {{Host: "mx1.example.test.", Pref: 10}},
			"brokenmx.test":  {{Host: "mx1.example.test.", Pref: 10}, {Host: "mx3.example.test.", Pref: 20}},
			"threehost.test": {{Host: "mx1.example.test.", Pref: 10}, {Host: "mx2.example.test.", Pref: 20}, {Host: "mx3.example.test.", Pref: 30}},
		},
		IP: map[string][]netip.Addr{
			"mx1.example.test":  {netip.MustParseAddr("192.0.2.1")},
			"mx2.example.test":  {netip.MustParseAddr("192.0.2.2")},
			"mx3.example.test":  {netip.MustParseAddr("192.0.2.3")},
			"mx.other.test":     {netip.MustParseAddr("192.0.2.10")},
			"mx.secure.test":    {netip.MustParseAddr("192.0.2.20")},
			"home.example.test": {netip.MustParseAddr("192.0.2.100")},
		},
		NXDomain: map[string]bool{"nowhere.test": true},
	}
}

// newDeliverer builds a Deliverer over fake DNS and the test network,
// logging to the test log.
func newDeliverer(t testing.TB, cfg *config.Config, r resolve.Resolver, n *testNet) *Deliverer {
	t.Helper()
	d := New(cfg, route.New(cfg, r), slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d.Dial = n.Dial
	t.Cleanup(func() { d.Close() })
	return d
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(b, "\n"))
	return len(b), nil
}

// newDelivery is a queued message held in memory.
func newDelivery(from string, msg string, rcpts ...string) *queue.Delivery {
	return &queue.Delivery{
		ID:         "TESTID",
		From:       from,
		Recipients: rcpts,
		Size:       int64(len(msg)),
		Attempt:    1,
		Arrival:    time.Now(),
		Open:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte(msg))), nil },
	}
}

// byRecipient checks the contract's one result per recipient and indexes
// them.
func byRecipient(t testing.TB, dl *queue.Delivery, results []queue.Result) map[string]queue.Result {
	t.Helper()
	m := make(map[string]queue.Result, len(results))
	for _, r := range results {
		if _, dup := m[r.Recipient]; dup {
			t.Errorf("two results for %s", r.Recipient)
		}
		m[r.Recipient] = r
	}
	if len(results) != len(dl.Recipients) {
		t.Errorf("got %d results for %d recipients", len(results), len(dl.Recipients))
	}
	for _, rcpt := range dl.Recipients {
		if _, ok := m[rcpt]; !ok {
			t.Errorf("no result for %s", rcpt)
		}
	}
	return m
}

// waitCtx bounds waiting for a sink: a test fails, it does not hang.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const testMessage = "From: a@sender.test\r\nTo: b@example.test\r\nSubject: test\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nbody\r\n"
