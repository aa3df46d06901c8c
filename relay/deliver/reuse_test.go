package deliver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/relay/sink"
)

// TestDeliver_ReusesTheConnection: the second message to the same host
// travels on the first message's connection, in plain text or TLS.
func TestDeliver_ReusesTheConnection(t *testing.T) {
	t.Parallel()
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "STARTTLS"}[withTLS], func(t *testing.T) {
			t.Parallel()
			opts := sink.Options{}
			if withTLS {
				opts.TLSConfig = serverTLS(selfSigned(t, "mx1.example.test"))
			}
			s, addr := startSink(t, opts)
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
			d.IdleTimeout = time.Hour // a slow machine must not expire it
			for i := range 3 {
				if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@example.test")); r[0].Err != nil {
					t.Fatalf("message %d: %v", i+1, r[0].Err)
				}
			}
			msgs, err := s.Wait(waitCtx(t), 3)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Connections(); got != 1 {
				t.Errorf("sink saw %d connections, want 1 for three messages", got)
			}
			for i, m := range msgs {
				if m.Conn != 1 || (m.TLS != "") != withTLS || string(m.Data) != testMessage {
					t.Errorf("message %d: conn %d TLS %q intact %v; want conn 1, TLS %v, intact", i+1, m.Conn, m.TLS, string(m.Data) == testMessage, withTLS)
				}
			}
		})
	}
}

// TestDeliver_ReuseAfterRefusal: a connection whose transaction was
// refused (every RCPT 550) is reset and carries the next message.
func TestDeliver_ReuseAfterRefusal(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{Reply: func(cmd sink.Command, arg string) *sink.Reply {
		if cmd == sink.CommandRCPT && arg == "gone@example.test" {
			return &sink.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		}
		return nil
	}})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	d.IdleTimeout = time.Hour
	if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "gone@example.test"))[0]; !r.Permanent {
		t.Fatalf("first Deliver = %v, want a permanent failure", r.Err)
	}
	if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@example.test"))[0]; r.Err != nil {
		t.Fatalf("second Deliver = %v", r.Err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || s.Connections() != 1 || msgs[0].From != "a@sender.test" {
		t.Errorf("sink: %v, %d connections; want the second message on the first connection", err, s.Connections())
	}
}

func TestDeliver_NoReuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(d *Deliverer, clock *fakeClock)
		// between runs between the two messages.
		between func(clock *fakeClock)
	}{
		{"reuse turned off", func(d *Deliverer, _ *fakeClock) { d.IdleTimeout = -1 }, func(*fakeClock) {}},
		{"idle longer than the idle timeout", func(*Deliverer, *fakeClock) {}, func(c *fakeClock) { c.advance(DefaultIdleTimeout + time.Second) }},
		{"connection older than the reuse limit", func(d *Deliverer, _ *fakeClock) { d.IdleTimeout = time.Hour }, func(c *fakeClock) { c.advance(maxConnAge + time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{})
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
			clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			d.Now = clock.now
			tt.setup(d, clock)
			for i := range 2 {
				if i == 1 {
					tt.between(clock)
				}
				if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@example.test")); r[0].Err != nil {
					t.Fatalf("message %d: %v", i+1, r[0].Err)
				}
			}
			if _, err := s.Wait(waitCtx(t), 2); err != nil {
				t.Fatal(err)
			}
			if got := s.Connections(); got != 2 {
				t.Errorf("sink saw %d connections, want 2", got)
			}
		})
	}
}

// TestDeliver_NoReuseAcrossTLSPolicies: a connection opened under "may"
// does not carry mail that requires "encrypt".
func TestDeliver_NoReuseAcrossTLSPolicies(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{TLSConfig: serverTLS(selfSigned(t, "mx1.example.test"))})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	cfg := testConfig(t, map[string]string{"*": "smtp:[mx1.example.test]"})
	cfg.Delivery.TLSPolicy = map[string]config.DeliveryTLS{"secure.test": config.DeliveryTLSEncrypt}
	d := newDeliverer(t, cfg, fakeDNS(), n)
	for _, rcpt := range []string{"a@plain.test", "b@secure.test"} {
		if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, rcpt)); r[0].Err != nil {
			t.Fatalf("%s: %v", rcpt, r[0].Err)
		}
	}
	if _, err := s.Wait(waitCtx(t), 2); err != nil || s.Connections() != 2 {
		t.Errorf("sink: %v, %d connections; want 2 connections, one per policy", err, s.Connections())
	}
}

// TestDeliver_StaleCachedConnectionIsReplaced: a server that closed the
// idle connection costs nothing but a new connection.
func TestDeliver_StaleCachedConnectionIsReplaced(t *testing.T) {
	t.Parallel()
	first := append(transaction("b@mx1only.test"), step{close: true})
	p, addr := startPeer(t, first, transaction("b@mx1only.test"))
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	for i := range 2 {
		if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@mx1only.test")); r[0].Err != nil {
			t.Fatalf("message %d: %v", i+1, r[0].Err)
		}
	}
	if p.Conns() != 2 || len(p.Data()) != 2 {
		t.Errorf("peer saw %d connections and %d messages, want 2 and 2", p.Conns(), len(p.Data()))
	}
}

// TestDeliver_IdleConnectionsEndWithQUIT: Close, and the idle timer, say
// QUIT to cached connections.
func TestDeliver_IdleConnectionsEndWithQUIT(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		idle time.Duration
		end  func(d *Deliverer)
	}{
		{"Close", time.Hour, func(d *Deliverer) { d.Close() }},
		{"idle timer", 10 * time.Millisecond, func(*Deliverer) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, addr := startPeer(t, transaction("b@mx1only.test"))
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
			d.IdleTimeout = tt.idle
			if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@mx1only.test")); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
			tt.end(d)
			select {
			case n := <-p.quits:
				if n != 0 {
					t.Errorf("QUIT on connection %d, want 0", n)
				}
			case <-waitCtx(t).Done():
				t.Fatalf("no QUIT; peer saw %q", p.Lines(0))
			}
		})
	}
}

// TestDeliver_DestinationConcurrency: no more than
// destination_concurrency connections to one next hop at once.
func TestDeliver_DestinationConcurrency(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var mu sync.Mutex
	active, peak := 0, 0
	s, addr := startSink(t, sink.Options{Reply: func(cmd sink.Command, _ string) *sink.Reply {
		switch cmd {
		case sink.CommandMAIL:
			mu.Lock()
			active++
			peak = max(peak, active)
			mu.Unlock()
			<-gate
		case sink.CommandDATA:
			mu.Lock()
			active--
			mu.Unlock()
		}
		return nil
	}})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	cfg := testConfig(t, nil)
	cfg.Delivery.DestinationConcurrency = 2
	d := newDeliverer(t, cfg, fakeDNS(), n)
	d.IdleTimeout = time.Hour
	d.init() // the test reads d.limiter

	const total = 5
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for range total {
		wg.Go(func() {
			errs <- d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@mx1only.test"))[0].Err
		})
	}
	// Wait until all five hold or wait for a slot, and two are inside
	// the sink: with the limiter broken, all five would be by now.
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
	eventually(t, func() string {
		d.limiter.mu.Lock()
		defer d.limiter.mu.Unlock()
		refs := 0
		if s := d.limiter.slots["smtp:mx1only.test"]; s != nil {
			refs = s.refs
		}
		mu.Lock()
		defer mu.Unlock()
		if refs == total && active == 2 {
			return ""
		}
		return fmt.Sprintf("%d deliveries at the limiter, %d in the sink; want %d and 2", refs, active, total)
	})
	openGate.Do(func() { close(gate) })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Deliver = %v", err)
		}
	}
	if _, err := s.Wait(waitCtx(t), total); err != nil {
		t.Fatal(err)
	}
	if peak != 2 || s.Connections() != 2 {
		t.Errorf("peak concurrency %d over %d connections, want 2 and 2", peak, s.Connections())
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(2)
	ctx := context.Background()
	r1, err1 := l.acquire(ctx, "a")
	r2, err2 := l.acquire(ctx, "a")
	if err1 != nil || err2 != nil {
		t.Fatalf("first two acquire(a) = %v, %v; want slots", err1, err2)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.acquire(done, "a"); err == nil {
		t.Errorf("third acquire(a) with a cancelled context succeeded, want it to wait and give up")
	}
	rb, err := l.acquire(ctx, "b")
	if err != nil {
		t.Errorf("acquire(b) = %v, want a slot: destinations are independent", err)
	}
	r1()
	r3, err := l.acquire(ctx, "a")
	if err != nil {
		t.Fatalf("acquire(a) after a release = %v, want the freed slot", err)
	}
	r2()
	r3()
	rb()
	if len(l.slots) != 0 {
		t.Errorf("limiter keeps %d destinations after every release, want 0", len(l.slots))
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventually waits, bounded, for a condition other goroutines make true;
// cond returns "" when it holds, else what is still missing.
func eventually(t *testing.T, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := cond()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", missing)
		}
		time.Sleep(time.Millisecond)
	}
}
