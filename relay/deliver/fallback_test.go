package deliver

import (
	"context"
	"testing"
	"time"

	"smarthost/relay/sink"
)

// transaction is a script for a server that accepts one message.
func transaction(rcpts ...string) []step {
	s := []step{greet(), ehlo(), {expect: "MAIL FROM:", reply: "250 2.1.0 ok"}}
	for _, r := range rcpts {
		s = append(s, step{expect: "RCPT TO:<" + r + ">", reply: "250 2.1.5 ok"})
	}
	return append(s, step{expect: "DATA", reply: "354 go ahead", data: true}, step{reply: "250 2.0.0 queued as PEER1"})
}

// TestDeliver_MovesOnToTheNextMX: every failure before MAIL FROM on the
// first MX moves the attempt to the second (RFC 5321 §5.1).
func TestDeliver_MovesOnToTheNextMX(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		first  []step // nil: connection refused
		policy string
	}{
		{"connection refused", nil, ""},
		{"421 greeting", []step{{reply: "421 4.3.2 too busy"}}, ""},
		{"554 greeting", []step{{reply: "554 5.3.2 no SMTP service here"}}, ""},
		{"EHLO 421", []step{greet(), {expect: "EHLO", reply: "421 4.7.0 come back later", close: true}}, ""},
		{"EHLO and HELO refused", []step{greet(), {expect: "EHLO", reply: "502 5.5.1 no"}, {expect: "HELO", reply: "550 5.7.1 go away"}}, ""},
		{"connection closed at greeting", []step{{close: true}}, ""},
		{"no STARTTLS under encrypt", []step{greet(), ehlo()}, "encrypt"},
		{"garbage instead of TLS under encrypt", []step{greet(),
			{expect: "EHLO", reply: "250-peer.example.test\n250 STARTTLS"},
			{expect: "STARTTLS", reply: "220 2.0.0 go ahead\nthis is not a TLS handshake", close: true}}, "encrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca := newTestCA(t)
			s, sinkAddr := startSink(t, sink.Options{TLSConfig: serverTLS(ca.issue(t, "mx2.example.test"))})
			n := newTestNet()
			n.route("192.0.2.2:25", sinkAddr)
			if tt.first != nil {
				_, addr := startPeer(t, tt.first)
				n.route("192.0.2.1:25", addr)
			}
			cfg := testConfig(t, nil)
			if tt.policy != "" {
				cfg.Delivery.TLS = "encrypt"
			}
			d := newDeliverer(t, cfg, fakeDNS(), n)
			r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@example.test"))[0]
			if r.Err != nil || r.MX != "mx2.example.test[192.0.2.2]:25" {
				t.Errorf("Deliver = %v via %q, want delivered via mx2", r.Err, r.MX)
			}
			if _, err := s.Wait(waitCtx(t), 1); err != nil {
				t.Error(err)
			}
			if dials := n.Dials(); len(dials) != 2 || dials[0] != "192.0.2.1:25" || dials[1] != "192.0.2.2:25" {
				t.Errorf("dials = %v, want mx1 then mx2", dials)
			}
		})
	}
}

// TestDeliver_WhenNoHostAnswers: the attempt fails permanently only when
// every host refused permanently.
func TestDeliver_WhenNoHostAnswers(t *testing.T) {
	t.Parallel()
	refuse := []step{{reply: "554 5.3.2 no service"}}
	busy := []step{{reply: "421 4.3.2 busy"}}
	tests := []struct {
		name          string
		mx1, mx2      []step // nil: connection refused
		wantPermanent bool
		wantEnhanced  string
		wantMX        string
	}{
		{"both 554", refuse, refuse, true, "5.3.2", "mx2.example.test[192.0.2.2]:25"},
		{"554 then refused", refuse, nil, false, "4.4.1", "mx2.example.test[192.0.2.2]:25"},
		{"421 then 554", busy, refuse, false, "4.3.2", "mx1.example.test[192.0.2.1]:25"},
		{"both refused", nil, nil, false, "4.4.1", "mx2.example.test[192.0.2.2]:25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := newTestNet()
			for ip, script := range map[string][]step{"192.0.2.1:25": tt.mx1, "192.0.2.2:25": tt.mx2} {
				if script != nil {
					_, addr := startPeer(t, script)
					n.route(ip, addr)
				}
			}
			d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
			r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@example.test"))[0]
			if r.Err == nil || r.Permanent != tt.wantPermanent || r.Enhanced != tt.wantEnhanced || r.MX != tt.wantMX {
				t.Errorf("Deliver = %v Permanent %v Enhanced %q MX %q; want permanent %v %s at %s", r.Err, r.Permanent, r.Enhanced, r.MX, tt.wantPermanent, tt.wantEnhanced, tt.wantMX)
			}
		})
	}
}

// TestDeliver_421MidTransaction: a 421 ends the session; every recipient
// of the transaction is deferred with it, and the connection is not
// reused.
func TestDeliver_421MidTransaction(t *testing.T) {
	t.Parallel()
	p, addr := startPeer(t,
		[]step{greet(), ehlo(),
			{expect: "MAIL FROM:", reply: "250 2.1.0 ok"},
			{expect: "RCPT TO:<a@mx1only.test>", reply: "250 2.1.5 ok"},
			{expect: "RCPT TO:<b@mx1only.test>", reply: "421 4.3.2 shutting down", close: true}},
		transaction("c@mx1only.test"))
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("a@sender.test", testMessage, "a@mx1only.test", "b@mx1only.test", "x@mx1only.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	for _, rcpt := range dl.Recipients {
		if r := res[rcpt]; r.Err == nil || r.Permanent || r.Reply != "421 4.3.2 shutting down" {
			t.Errorf("%s = %v Permanent %v Reply %q; want deferred with the 421", rcpt, r.Err, r.Permanent, r.Reply)
		}
	}
	if r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "c@mx1only.test"))[0]; r.Err != nil {
		t.Fatalf("next Deliver = %v", r.Err)
	}
	if got := p.Conns(); got != 2 {
		t.Errorf("peer saw %d connections, want 2: the one closed by 421 is not reused", got)
	}
}

// TestDeliver_StallsTimeOut: a server that stops answering costs one
// command timeout, then the attempt fails temporarily or moves on.
func TestDeliver_StallsTimeOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script []step
	}{
		{"silent after connect", []step{{stall: true}}},
		{"silent after EHLO", []step{greet(), {expect: "EHLO"}, {stall: true}}},
		{"silent after the final dot", []step{greet(), ehlo(),
			{expect: "MAIL FROM:", reply: "250 ok"}, {expect: "RCPT TO:", reply: "250 ok"},
			{expect: "DATA", reply: "354 go", data: true}, {stall: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, addr := startPeer(t, tt.script)
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			cfg := testConfig(t, nil)
			cfg.Delivery.CommandTimeout.Duration = 200 * time.Millisecond
			d := newDeliverer(t, cfg, fakeDNS(), n)
			start := time.Now()
			r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@mx1only.test"))[0]
			if r.Err == nil || r.Permanent {
				t.Errorf("Deliver = %v Permanent %v, want a temporary failure", r.Err, r.Permanent)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Deliver took %v, want about the 200ms command timeout (final dot: twice that)", took)
			}
		})
	}
}

// TestDeliver_ContextCancelEndsAStalledSession: shutting down does not
// wait for a command timeout.
func TestDeliver_ContextCancelEndsAStalledSession(t *testing.T) {
	t.Parallel()
	_, addr := startPeer(t, []step{{stall: true}})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	cfg := testConfig(t, nil)
	cfg.Delivery.CommandTimeout.Duration = time.Hour
	d := newDeliverer(t, cfg, fakeDNS(), n)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := d.Deliver(ctx, newDelivery("a@sender.test", testMessage, "b@mx1only.test"))[0]
	if r.Err == nil || r.Permanent {
		t.Errorf("Deliver = %v Permanent %v, want a temporary failure", r.Err, r.Permanent)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Deliver took %v after the context ended at 200ms", took)
	}
}
