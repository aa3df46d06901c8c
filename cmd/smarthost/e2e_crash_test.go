package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"smarthost/relay/dkim"
	"smarthost/relay/sink"
)

// The crash test's burst: planned messages, concurrent sessions, and how
// many 250 replies to wait for before kill -9, well before the burst ends.
const (
	burstMessages = 1000
	burstSessions = 8
	killAfter250s = 500
)

// burstMessage is message i of the burst: a unique Message-ID, a
// recipient the sink refuses or takes before the crash (every fourth),
// and a body whose size varies from a few hundred bytes to about 20 KB,
// so that a half-written spool file would show.
func burstMessage(i int) (id, rcpt string, msg, body []byte) {
	id = fmt.Sprintf("<burst-%04d@%s>", i, signedDomain)
	rcpt = fmt.Sprintf("bob+%d@rcpt.e2e.test", i)
	var b bytes.Buffer
	for l := range 5 + (i%13)*40 {
		fmt.Fprintf(&b, "message %04d line %03d: the quick brown fox jumps over the lazy dog\r\n", i, l)
	}
	body = b.Bytes()
	msg = fmt.Appendf(nil, "From: alice@%s\r\nTo: %s\r\nSubject: burst %d\r\nMessage-ID: %s\r\n\r\n%s", signedDomain, rcpt, i, id, body)
	return id, rcpt, msg, body
}

// acceptedEarly reports whether the sink takes rcpt before the crash:
// every fourth message is delivered while the burst runs, so the kill can
// also land between a delivery and the record of it.
func acceptedEarly(rcpt string) bool {
	var i int
	fmt.Sscanf(rcpt, "bob+%d@", &i)
	return i%4 == 0
}

// burst is the record of what the clients sent and what was answered.
type burst struct {
	mu       sync.Mutex
	bodies   map[string][]byte // Message-ID → body, for every message whose DATA began
	accepted map[string]bool   // Message-ID → answered 250
	n250     atomic.Int64
	reached  chan struct{} // closed at the killAfter250s-th 250
}

// session sends messages first, first+step, … on one connection until the
// burst is done or the server goes away.
func (b *burst) session(addr string, first, step int) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = e2eTimeout, e2eTimeout
	if err := c.Hello("client.e2e.test"); err != nil {
		return
	}
	for i := first; i < burstMessages; i += step {
		id, rcpt, msg, body := burstMessage(i)
		if c.Mail("alice@"+signedDomain, nil) != nil || c.Rcpt(rcpt, nil) != nil {
			return
		}
		w, err := c.Data()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.bodies[id] = body
		b.mu.Unlock()
		if _, err := w.Write(msg); err != nil {
			return
		}
		// go-smtp returns an error for any reply but 250 here.
		if _, err := w.CloseWithResponse(); err != nil {
			return
		}
		b.mu.Lock()
		b.accepted[id] = true
		b.mu.Unlock()
		if b.n250.Add(1) == killAfter250s {
			close(b.reached)
		}
	}
}

// TestE2E_KillDashNineLosesNothing is issue 3's crash test at the level of
// the whole server: `smarthost serve` runs as a process of its own, eight
// sessions submit a burst of 1000 uniquely identified messages while the
// next hop defers three in four of them (451), and after the 500th 250
// reply the server gets SIGKILL. Restarted on the same state_dir with the
// next hop accepting everything, and flushed, it delivers every message
// that was answered 250 at least once, and whatever it delivers is whole:
// it parses, its body is byte for byte what was sent, and its DKIM
// signature (made before the crash) verifies. Duplicates and messages
// delivered without a 250 (in flight at the kill) are counted and logged.
func TestE2E_KillDashNineLosesNothing(t *testing.T) {
	t.Parallel()
	var accepting atomic.Bool
	next, nextAddr := startSink(t, sink.Options{Reply: func(cmd sink.Command, arg string) *sink.Reply {
		if cmd == sink.CommandRCPT && !accepting.Load() && !acceptedEarly(arg) {
			return &sink.Reply{Code: 451, Enhanced: "4.3.0", Text: "not yet"}
		}
		return nil
	}})
	dir := t.TempDir()
	key := newKey(t, dir, signedDomain, "ed", dkim.KindEd25519)
	c := trustedConfig(t, nextAddr)
	c.Dir = dir
	c.Keys = []e2eKey{key}
	// The child opens its own listener, so the address is reserved here
	// and freed just before the child starts (see reserveAddr).
	c.Listeners[0].Address = reserveAddr(t)
	path := c.write(t)
	start := time.Now()
	first := startChild(t, path, "submission")

	b := &burst{bodies: make(map[string][]byte), accepted: make(map[string]bool), reached: make(chan struct{})}
	var wg sync.WaitGroup
	for s := range burstSessions {
		wg.Go(func() { b.session(c.Listeners[0].Address, s, burstSessions) })
	}
	sessionsDone := make(chan struct{})
	go func() { wg.Wait(); close(sessionsDone) }()
	select {
	case <-b.reached:
	case <-sessionsDone:
		t.Fatalf("the burst ended after %d replies 250 without reaching %d; is the server up?", b.n250.Load(), killAfter250s)
	}
	first.kill()
	<-sessionsDone
	killed := time.Now()
	deliveredBeforeKill := len(next.Messages())

	// Restart on the same spool, on a new port: nothing needs the old one.
	accepting.Store(true)
	c.Listeners[0].Address = reserveAddr(t)
	c.write(t)
	startChild(t, path, "submission")
	// Deferred mail waits an hour for its next attempt; flush, as an admin
	// would after the next hop came back.
	if code, out, errOut := smarthostCmd("queue", "flush", "-config", path); code != 0 {
		t.Fatalf("smarthost queue flush = exit %d, %q, %q", code, out, errOut)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	waitDelivered(t, next, b.accepted)
	waitQueueEmptyCmd(t, path)
	recovered := time.Now()

	msgs := next.Messages()
	seen := make(map[string]int)
	lookup := func(name string) ([]string, error) {
		if name == key.recordName() || name == key.recordName()+"." {
			return []string{key.Record}, nil
		}
		return nil, fmt.Errorf("no TXT record for %s", name)
	}
	for _, m := range msgs {
		id, body, err := parseDelivered(m.Data)
		if err != nil {
			t.Errorf("a delivered message does not parse: %v\n%q", err, m.Data)
			continue
		}
		seen[id]++
		want, ok := b.bodies[id]
		switch {
		case !ok:
			t.Errorf("delivered %s, which no client sent", id)
		case !bytes.Equal(body, want):
			t.Errorf("delivered %s with a body of %d bytes, want the %d bytes sent", id, len(body), len(want))
		}
		vs, err := dkim.Verify(bytes.NewReader(m.Data), lookup)
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Errorf("delivered %s: DKIM verification %v, %v; want one valid signature", id, vs, err)
		}
	}
	var missing []string
	duplicates, without250 := 0, 0
	for id := range b.accepted {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range seen {
		duplicates += n - 1
		if !b.accepted[id] {
			without250++
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d messages answered 250 were never delivered: %s", len(missing), strings.Join(missing, " "))
	}
	t.Logf("crash test: %d messages began DATA, %d were answered 250 before kill -9 (%d delivered by then); %d deliveries in all: %d unique, %d duplicates, %d without a 250 (in flight at the kill); start to kill %v, kill to empty queue %v",
		len(b.bodies), len(b.accepted), deliveredBeforeKill, len(msgs), len(seen), duplicates, without250,
		killed.Sub(start).Round(time.Millisecond), recovered.Sub(killed).Round(time.Millisecond))
}

// waitDelivered waits until the sink has received every message in want,
// by Message-ID.
func waitDelivered(t *testing.T, s *sink.Sink, want map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	for {
		msgs := s.Messages()
		got := make(map[string]bool, len(msgs))
		for _, m := range msgs {
			got[headerOf(m.Data, "Message-ID")] = true
		}
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if _, err := s.Wait(ctx, len(msgs)+1); err != nil {
			t.Fatalf("%d of %d messages answered 250 not delivered within %v", missing, len(want), e2eTimeout)
		}
	}
}

// waitQueueEmptyCmd polls `smarthost queue list` until the queue is empty.
func waitQueueEmptyCmd(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(e2eTimeout)
	for {
		code, out, errOut := smarthostCmd("queue", "list", "-config", path)
		if code == 0 && strings.HasPrefix(out, "Mail queue is empty") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty within %v: exit %d\n%s%s", e2eTimeout, code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parseDelivered parses a delivered message and returns its Message-ID and
// body.
func parseDelivered(data []byte) (id string, body []byte, err error) {
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		return "", nil, err
	}
	body, err = io.ReadAll(e.Body)
	if err != nil {
		return "", nil, err
	}
	id = e.Header.Get("Message-ID")
	if id == "" {
		return "", nil, fmt.Errorf("no Message-ID")
	}
	return id, body, nil
}
