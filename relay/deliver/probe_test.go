package deliver

import (
	"context"
	"strings"
	"testing"
	"time"

	"smarthost/relay/sink"
)

// homeSink is a next hop that knows some recipients: it refuses
// gone@ with 550, busy@ with 450, and MAIL from noprobe senders; it
// accepts everyone else.
func homeSink(t *testing.T, opts sink.Options) (*sink.Sink, string) {
	t.Helper()
	opts.Reply = func(cmd sink.Command, arg string) *sink.Reply {
		switch {
		case cmd == sink.CommandRCPT && strings.HasPrefix(arg, "gone@"):
			return &sink.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"}
		case cmd == sink.CommandRCPT && strings.HasPrefix(arg, "busy@"):
			return &sink.Reply{Code: 450, Enhanced: "4.2.1", Text: "Try later"}
		case cmd == sink.CommandRCPT && strings.HasPrefix(arg, "bye@"):
			return &sink.Reply{Code: 421, Enhanced: "4.3.2", Text: "Shutting down"}
		}
		return nil
	}
	return startSink(t, opts)
}

func TestProbe_ReportsTheNextHopsAnswer(t *testing.T) {
	t.Parallel()
	s, addr := homeSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.100:10025", addr)
	cfg := testConfig(t, map[string]string{"example.test": "smtp:[home.example.test]:10025"})
	d := newDeliverer(t, cfg, fakeDNS(), n)

	tests := []struct {
		rcpt         string
		wantStatus   ProbeStatus
		wantCode     int    // 0 when accepted
		wantEnhanced string // "" when accepted
		wantLine     string
	}{
		{"alice@example.test", ProbeAccepted, 0, "", ""},
		{"gone@example.test", ProbeRejected, 550, "5.1.1", "550 5.1.1 No such user"},
		{"busy@example.test", ProbeUndetermined, 450, "4.2.1", "450 4.2.1 Try later"},
		{"bye@example.test", ProbeUndetermined, 421, "4.3.2", "421 4.3.2 Shutting down"},
	}
	for _, tt := range tests {
		got := d.Probe(context.Background(), tt.rcpt)
		if got.Status != tt.wantStatus || !got.Status.Valid() {
			t.Errorf("Probe(%s).Status = %q (%v), want %q", tt.rcpt, got.Status, got.Err, tt.wantStatus)
		}
		if got.MX != "home.example.test[192.0.2.100]:10025" {
			t.Errorf("Probe(%s).MX = %q, want home.example.test[192.0.2.100]:10025", tt.rcpt, got.MX)
		}
		if tt.wantCode == 0 {
			if got.Err != nil {
				t.Errorf("Probe(%s).Err = %v, want nil", tt.rcpt, got.Err)
			}
			continue
		}
		if got.Err == nil {
			t.Errorf("Probe(%s).Err = nil, want %d %s", tt.rcpt, tt.wantCode, tt.wantEnhanced)
			continue
		}
		if got.Err.Code != tt.wantCode || got.Err.Enhanced != tt.wantEnhanced || got.Err.Line != tt.wantLine || got.Err.Command != "RCPT TO" {
			t.Errorf("Probe(%s).Err = %d %s %q at %q, want %d %s %q at RCPT TO", tt.rcpt, got.Err.Code, got.Err.Enhanced, got.Err.Line, got.Err.Command, tt.wantCode, tt.wantEnhanced, tt.wantLine)
		}
		if got.Err.Permanent != (tt.wantStatus == ProbeRejected) {
			t.Errorf("Probe(%s).Err.Permanent = %v, want %v", tt.rcpt, got.Err.Permanent, tt.wantStatus == ProbeRejected)
		}
	}
	if msgs := s.Messages(); len(msgs) != 0 {
		t.Errorf("the next hop received %d messages from probes, want none", len(msgs))
	}
}

// TestProbe_Dialogue pins what a probe says: EHLO, MAIL FROM:<> (the null
// sender, so nothing can bounce), RCPT TO, and no DATA; with connection
// reuse off, QUIT right after.
func TestProbe_Dialogue(t *testing.T) {
	t.Parallel()
	p, addr := startPeer(t, []step{
		greet(), ehlo(),
		{expect: "MAIL FROM:<>", reply: "250 2.1.0 Ok"},
		{expect: "RCPT TO:<b@mx1only.test>", reply: "250 2.1.5 Ok"},
	})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	d.IdleTimeout = -1

	if got := d.Probe(context.Background(), "b@mx1only.test"); got.Status != ProbeAccepted {
		t.Fatalf("Probe = %q (%v), want accepted", got.Status, got.Err)
	}
	select {
	case <-p.quits:
	case <-waitCtx(t).Done():
		t.Fatalf("no QUIT; peer saw %q", p.Lines(0))
	}
	want := []string{"EHLO relay.example.test", "MAIL FROM:<> BODY=8BITMIME", "RCPT TO:<b@mx1only.test>", "QUIT"}
	if got := p.Lines(0); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("peer saw %q, want %q", got, want)
	}
}

func TestProbe_UndeterminedBeforeRCPT(t *testing.T) {
	t.Parallel()
	refusing, refusingAddr := startSink(t, sink.Options{Reply: func(cmd sink.Command, _ string) *sink.Reply {
		if cmd == sink.CommandMAIL {
			return &sink.Reply{Code: 550, Enhanced: "5.7.1", Text: "No null sender here"}
		}
		return nil
	}})
	n := newTestNet()
	n.route("192.0.2.10:25", refusingAddr) // mx.other.test
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)

	tests := []struct {
		name        string
		rcpt        string
		wantCommand string
		wantMX      string
	}{
		// A refused null sender says nothing about the recipient, even
		// with 5xx: the session must not answer 550 "no such user".
		{"MAIL FROM:<> refused", "x@other.test", "MAIL FROM", "mx.other.test[192.0.2.10]:25"},
		{"no such domain", "x@nowhere.test", "route", ""},
		{"connection refused", "x@secure.test", "connect", "mx.secure.test[192.0.2.20]:25"},
	}
	for _, tt := range tests {
		got := d.Probe(context.Background(), tt.rcpt)
		if got.Status != ProbeUndetermined || got.Err == nil || got.Err.Command != tt.wantCommand || got.MX != tt.wantMX {
			t.Errorf("%s: Probe(%s) = %q, %v, MX %q; want undetermined at %s, MX %q", tt.name, tt.rcpt, got.Status, got.Err, got.MX, tt.wantCommand, tt.wantMX)
		}
	}
	if msgs := refusing.Messages(); len(msgs) != 0 {
		t.Errorf("the refusing host received %d messages, want none", len(msgs))
	}
}

func TestProbe_SMTPUTF8RecipientWithoutSMTPUTF8IsRejected(t *testing.T) {
	t.Parallel()
	_, plain := startSink(t, sink.Options{})
	_, utf8 := startSink(t, sink.Options{SMTPUTF8: true})
	n := newTestNet()
	n.route("192.0.2.1:25", plain)
	n.route("192.0.2.10:25", utf8)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)

	if got := d.Probe(context.Background(), "jürgen@mx1only.test"); got.Status != ProbeRejected || got.Err == nil || got.Err.Enhanced != "5.6.7" {
		t.Errorf("Probe(jürgen@mx1only.test) without SMTPUTF8 = %q, %v; want rejected with 5.6.7", got.Status, got.Err)
	}
	if got := d.Probe(context.Background(), "jürgen@other.test"); got.Status != ProbeAccepted {
		t.Errorf("Probe(jürgen@other.test) with SMTPUTF8 = %q, %v; want accepted", got.Status, got.Err)
	}
}

// TestProbe_SharesConnectionsWithDelivery: probes and deliveries to one
// host use one connection, reset between uses.
func TestProbe_SharesConnectionsWithDelivery(t *testing.T) {
	t.Parallel()
	s, addr := homeSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	d.IdleTimeout = time.Minute

	for _, rcpt := range []string{"a@mx1only.test", "gone@mx1only.test", "b@mx1only.test"} {
		d.Probe(context.Background(), rcpt)
	}
	dl := newDelivery("s@sender.test", testMessage, "a@mx1only.test")
	if r := d.Deliver(context.Background(), dl); r[0].Err != nil {
		t.Fatalf("Deliver after probes = %v", r[0].Err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || len(msgs) != 1 || msgs[0].From != "s@sender.test" || strings.Join(msgs[0].To, " ") != "a@mx1only.test" {
		t.Errorf("sink got %+v (%v); want one message from s@sender.test to a@mx1only.test only", msgs, err)
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("sink accepted %d connections, want 1 shared by three probes and a delivery", got)
	}
}

func TestProbe_ContextCancelEndsAStalledProbe(t *testing.T) {
	t.Parallel()
	_, addr := startPeer(t, []step{greet(), ehlo(), {stall: true}})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := d.Probe(ctx, "b@mx1only.test")
	if got.Status != ProbeUndetermined || got.Err == nil || got.Err.Permanent {
		t.Errorf("Probe on a stalled server = %q, %v; want undetermined, temporary", got.Status, got.Err)
	}
	// The command timeout is 5 s; the context's 100 ms must end it.
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Probe returned after %v, want soon after the context ended", el)
	}
}

func TestProbeStatus_Valid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    ProbeStatus
		want bool
	}{{ProbeAccepted, true}, {ProbeRejected, true}, {ProbeUndetermined, true}, {"", false}, {"deliverable", false}} {
		if got := tt.s.Valid(); got != tt.want {
			t.Errorf("ProbeStatus(%q).Valid() = %v, want %v", tt.s, got, tt.want)
		}
	}
}
