package recipients

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/relay/deliver"
	"smarthost/relay/resolve/resolvetest"
	"smarthost/relay/route"
	"smarthost/relay/sink"
)

// home is a home server on loopback that knows alice and slow, refuses
// gone with 550 5.1.1, and answers busy with 450. RCPTs counts the RCPT
// commands it received per address; slow's RCPT waits for release.
type home struct {
	mu      sync.Mutex
	rcpts   map[string]int
	release chan struct{}
	addr    string
	sink    *sink.Sink
}

func startHome(t *testing.T) *home {
	t.Helper()
	h := &home{rcpts: map[string]int{}, release: make(chan struct{})}
	h.sink = sink.New(sink.Options{Reply: func(cmd sink.Command, arg string) *sink.Reply {
		if cmd != sink.CommandRCPT {
			return nil
		}
		h.mu.Lock()
		h.rcpts[arg]++
		h.mu.Unlock()
		switch local := arg[:strings.IndexByte(arg, '@')]; local {
		case "gone":
			return &sink.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"}
		case "busy":
			return &sink.Reply{Code: 450, Enhanced: "4.2.1", Text: "Try later"}
		case "slow":
			<-h.release
		}
		return nil
	}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { h.sink.Serve(l); close(done) }()
	t.Cleanup(func() { h.sink.Close(); <-done })
	return h
}

func (h *home) RCPTs(addr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rcpts[addr]
}

// deliverer routes example.test to the home server by the transport map,
// as a real configuration does; no DNS is involved.
func deliverer(t *testing.T, h *home) *deliver.Deliverer {
	t.Helper()
	cfg := config.Default()
	cfg.Hostname = "relay.example.test"
	cfg.Delivery.ConnectTimeout = config.Duration{Duration: 5 * time.Second}
	cfg.Delivery.CommandTimeout = config.Duration{Duration: 5 * time.Second}
	hop, err := config.ParseNextHop("smtp:[" + strings.Replace(h.addr, ":", "]:", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Transport = map[string]config.NextHop{"example.test": hop}
	d := deliver.New(cfg, route.New(cfg, &resolvetest.Resolver{}), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { d.Close() })
	return d
}

// TestCheck_AgainstHomeServer verifies recipients with real RCPT probes
// through relay/deliver, and follows the cache with a fake clock.
func TestCheck_AgainstHomeServer(t *testing.T) {
	t.Parallel()
	h := startHome(t)
	clk := newClock()
	c := newChecker(t, Options{Prober: deliverer(t, h), Now: clk.Now})
	ctx := context.Background()

	steps := []struct {
		name      string
		advance   time.Duration
		rcpt      string
		want      Verdict
		wantRCPTs int // RCPTs the home server has seen for rcpt, after the step
	}{
		{"known user", 0, "alice@example.test", Accept, 1},
		{"known user, cached", time.Minute, "alice@example.test", Accept, 1},
		{"unknown user", 0, "gone@example.test", RejectUnknown, 1},
		{"unknown user, cached", 9 * time.Minute, "gone@example.test", RejectUnknown, 1},
		{"unknown user, negative cache expired", time.Minute, "gone@example.test", RejectUnknown, 2},
		{"450 from the home server", 0, "busy@example.test", TempFail, 1},
		{"450 again: not cached", 0, "busy@example.test", TempFail, 2},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		got := c.Check(ctx, s.rcpt)
		if got.Verdict != s.want || h.RCPTs(s.rcpt) != s.wantRCPTs {
			t.Errorf("%s: Check(%s) = %+v, home server saw %d RCPTs; want %s after %d", s.name, s.rcpt, got, h.RCPTs(s.rcpt), s.want, s.wantRCPTs)
		}
	}
	if got := c.Check(ctx, "gone@example.test"); !strings.Contains(got.Reason, "550 5.1.1 No such user") {
		t.Errorf("Reason for an unknown user = %q, want the home server's reply", got.Reason)
	}
	if msgs := h.sink.Messages(); len(msgs) != 0 {
		t.Errorf("the home server received %d messages from probes, want none", len(msgs))
	}
}

// TestCheck_HomeServerDown: no answer is TempFail (450), never
// RejectUnknown (550).
func TestCheck_HomeServerDown(t *testing.T) {
	t.Parallel()
	// An address on which nothing listens any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	c := newChecker(t, Options{Prober: deliverer(t, &home{addr: l.Addr().String()}), Now: newClock().Now})
	if got := c.Check(context.Background(), "alice@example.test"); got.Verdict != TempFail || !strings.Contains(got.Reason, "connect") {
		t.Errorf("Check with the home server down = %+v, want TempFail naming the connection failure", got)
	}
}

// TestCheck_ConcurrentProbesAgainstHomeServer: sessions asking about one
// address at once cause one RCPT probe.
func TestCheck_ConcurrentProbesAgainstHomeServer(t *testing.T) {
	t.Parallel()
	const n = 10
	h := startHome(t)
	clk := newClock()
	clk.ticks = make(chan struct{}, 2*n)
	c := newChecker(t, Options{Prober: deliverer(t, h), Now: clk.Now, Wait: time.Minute})

	results := make(chan Result, n)
	for range n {
		go func() { results <- c.Check(context.Background(), "slow@example.test") }()
	}
	for range n {
		<-clk.ticks // every Check has joined or started the probe
	}
	close(h.release)
	for range n {
		if got := <-results; got.Verdict != Accept {
			t.Errorf("Check = %+v, want Accept", got)
		}
	}
	if got := h.RCPTs("slow@example.test"); got != 1 {
		t.Errorf("the home server saw %d RCPTs for %d concurrent checks, want 1", got, n)
	}
}
