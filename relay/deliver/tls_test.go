package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"smarthost/config"
	"smarthost/queue/mlog"
	"smarthost/relay/route"
	"smarthost/relay/sink"
)

// TestDeliver_TLSPolicies runs every outbound policy against a sink that
// presents a good certificate, a self-signed one, one for the wrong name,
// or offers no STARTTLS at all.
func TestDeliver_TLSPolicies(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	certs := map[string]*tls.Config{
		"valid":       serverTLS(ca.issue(t, "mx1.example.test")),
		"self-signed": serverTLS(selfSigned(t, "mx1.example.test")),
		"wrong name":  serverTLS(ca.issue(t, "other.example.test")),
		"no STARTTLS": nil,
	}
	type want struct {
		delivered bool
		tls       bool   // delivered over TLS
		enhanced  string // when not delivered
	}
	tests := []struct {
		server string
		policy config.DeliveryTLS
		want   want
	}{
		{"valid", config.DeliveryTLSMay, want{true, true, ""}},
		{"valid", config.DeliveryTLSEncrypt, want{true, true, ""}},
		{"valid", config.DeliveryTLSVerify, want{true, true, ""}},
		{"self-signed", config.DeliveryTLSMay, want{true, true, ""}},
		{"self-signed", config.DeliveryTLSEncrypt, want{true, true, ""}},
		{"self-signed", config.DeliveryTLSVerify, want{false, false, "4.7.5"}},
		{"wrong name", config.DeliveryTLSMay, want{true, true, ""}},
		{"wrong name", config.DeliveryTLSEncrypt, want{true, true, ""}},
		{"wrong name", config.DeliveryTLSVerify, want{false, false, "4.7.5"}},
		{"no STARTTLS", config.DeliveryTLSMay, want{true, false, ""}},
		{"no STARTTLS", config.DeliveryTLSEncrypt, want{false, false, "4.7.4"}},
		{"no STARTTLS", config.DeliveryTLSVerify, want{false, false, "4.7.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.server+"/"+string(tt.policy), func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{TLSConfig: certs[tt.server]})
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			cfg := testConfig(t, nil)
			cfg.Delivery.TLS = tt.policy
			d := newDeliverer(t, cfg, fakeDNS(), n)
			d.RootCAs = ca.pool
			dl := newDelivery("a@sender.test", testMessage, "b@mx1only.test")
			r := d.Deliver(context.Background(), dl)[0]
			if !tt.want.delivered {
				if r.Err == nil || r.Permanent || r.Enhanced != tt.want.enhanced {
					t.Errorf("Deliver = Err %v Permanent %v Enhanced %q; want a temporary failure %s", r.Err, r.Permanent, r.Enhanced, tt.want.enhanced)
				}
				if n := len(s.Messages()); n != 0 {
					t.Errorf("sink got %d messages, want none", n)
				}
				return
			}
			if r.Err != nil {
				t.Fatalf("Deliver = %v, want delivered", r.Err)
			}
			msgs, err := s.Wait(waitCtx(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			gotTLS := msgs[0].TLS != ""
			if gotTLS != tt.want.tls || (r.TLS != "") != tt.want.tls {
				t.Errorf("message TLS at sink %q, Result.TLS %q; want TLS %v", msgs[0].TLS, r.TLS, tt.want.tls)
			}
			if tt.want.tls && r.TLS != "TLSv1.3" {
				t.Errorf("Result.TLS = %q, want TLSv1.3", r.TLS)
			}
		})
	}
}

// TestDeliver_VerifyFailureTriesNextMX: under "verify" a bad certificate
// on the first MX moves on to the second, whose certificate is good.
func TestDeliver_VerifyFailureTriesNextMX(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	bad, badAddr := startSink(t, sink.Options{TLSConfig: serverTLS(selfSigned(t, "mx1.example.test"))})
	good, goodAddr := startSink(t, sink.Options{TLSConfig: serverTLS(ca.issue(t, "mx2.example.test"))})
	n := newTestNet()
	n.route("192.0.2.1:25", badAddr)
	n.route("192.0.2.2:25", goodAddr)
	cfg := testConfig(t, nil)
	cfg.Delivery.TLS = config.DeliveryTLSVerify
	d := newDeliverer(t, cfg, fakeDNS(), n)
	d.RootCAs = ca.pool
	r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@example.test"))[0]
	if r.Err != nil || r.MX != "mx2.example.test[192.0.2.2]:25" {
		t.Fatalf("Deliver = %v via %s, want delivered via mx2", r.Err, r.MX)
	}
	if _, err := good.Wait(waitCtx(t), 1); err != nil || len(bad.Messages()) != 0 {
		t.Errorf("good sink: %v, bad sink %d messages; want the message at the good one only", err, len(bad.Messages()))
	}
}

// TestDeliver_MayFallsBackToPlainText: when the STARTTLS handshake fails
// under "may", the host is tried again without TLS, as Postfix does, and
// a tls_fallback line is logged; under "encrypt" it is a failure.
func TestDeliver_MayFallsBackToPlainText(t *testing.T) {
	t.Parallel()
	// The server speaks only TLS 1.2 with RSA key exchange, which Go's
	// client no longer offers: every handshake fails.
	cfgTLS := serverTLS(selfSignedRSA(t, "mx1.example.test"))
	cfgTLS.MaxVersion = tls.VersionTLS12
	cfgTLS.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}

	for _, tt := range []struct {
		policy        config.DeliveryTLS
		wantDelivered bool
	}{{config.DeliveryTLSMay, true}, {config.DeliveryTLSEncrypt, false}} {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{TLSConfig: cfgTLS})
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			cfg := testConfig(t, nil)
			cfg.Delivery.TLS = tt.policy
			logs := &syncBuffer{}
			d := New(cfg, route.New(cfg, fakeDNS()), slog.New(slog.NewTextHandler(logs, nil)))
			d.Dial = n.Dial
			t.Cleanup(func() { d.Close() })

			r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@mx1only.test"))[0]
			fallbackLogged := strings.Contains(logs.String(), "msg="+mlog.TLSFallback+" queue_id=TESTID mx=mx1.example.test")
			if !tt.wantDelivered {
				if r.Err == nil || r.Permanent || r.Enhanced != "4.7.5" || fallbackLogged {
					t.Errorf("Deliver = %v (%s), fallback logged %v; want temporary 4.7.5 and no fallback", r.Err, r.Enhanced, fallbackLogged)
				}
				return
			}
			msgs, err := s.Wait(waitCtx(t), 1)
			if r.Err != nil || err != nil || msgs[0].TLS != "" || r.TLS != "" {
				t.Fatalf("Deliver = %v, sink %v; want delivered in plain text; log:\n%s", r.Err, err, logs)
			}
			if got := s.Connections(); got != 2 {
				t.Errorf("sink saw %d connections, want 2 (TLS attempt, then plain text)", got)
			}
			if !fallbackLogged {
				t.Errorf("log has no tls_fallback line for the message:\n%s", logs.String())
			}
		})
	}
}

// TestDeliver_STARTTLSRefusedUnderMayContinuesInPlainText: a 454 reply to
// STARTTLS leaves the session usable; "may" carries on without TLS.
func TestDeliver_STARTTLSRefusedUnderMayContinuesInPlainText(t *testing.T) {
	t.Parallel()
	p, addr := startPeer(t, []step{
		greet(),
		{expect: "EHLO relay.example.test", reply: "250-peer.example.test\n250 STARTTLS"},
		{expect: "STARTTLS", reply: "454 4.7.0 TLS not available due to local problem"},
		{expect: "MAIL FROM:<a@sender.test>", reply: "250 2.1.0 ok"},
		{expect: "RCPT TO:<b@mx1only.test>", reply: "250 2.1.5 ok"},
		{expect: "DATA", reply: "354 go ahead", data: true},
		{reply: "250 2.0.0 queued"},
	})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@mx1only.test"))[0]
	if r.Err != nil || r.TLS != "" || len(p.Data()) != 1 {
		t.Errorf("Deliver = %v TLS %q, peer got %d messages; want delivered in plain text on the same connection", r.Err, r.TLS, len(p.Data()))
	}
}

// TestDeliver_ImplicitTLS: an smtps next hop speaks TLS from the start.
func TestDeliver_ImplicitTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, policy := range []config.DeliveryTLS{config.DeliveryTLSMay, config.DeliveryTLSVerify} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{ImplicitTLS: true, TLSConfig: serverTLS(ca.issue(t, "home.example.test"))})
			n := newTestNet()
			n.route("192.0.2.100:465", addr)
			cfg := testConfig(t, map[string]string{"*": "smtps:[home.example.test]"})
			cfg.Delivery.TLS = policy
			d := newDeliverer(t, cfg, fakeDNS(), n)
			d.RootCAs = ca.pool
			r := d.Deliver(context.Background(), newDelivery("a@sender.test", testMessage, "b@anywhere.test"))[0]
			msgs, err := s.Wait(waitCtx(t), 1)
			if r.Err != nil || err != nil || msgs[0].TLS == "" || r.NextHop != "smtps:[home.example.test]" {
				t.Errorf("Deliver = %v via %s, sink %v; want delivered over implicit TLS", r.Err, r.NextHop, err)
			}
		})
	}
}

// TestDeliver_PerDestinationPolicy: tls_policy tightens one domain while
// the default stays "may"; the two recipients travel separately.
func TestDeliver_PerDestinationPolicy(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{TLSConfig: serverTLS(selfSigned(t, "mx1.example.test"))})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	cfg := testConfig(t, map[string]string{"*": "smtp:[mx1.example.test]"})
	cfg.Delivery.TLSPolicy = map[string]config.DeliveryTLS{"secure.test": config.DeliveryTLSVerify}
	d := newDeliverer(t, cfg, fakeDNS(), n)
	d.RootCAs = newTestCA(t).pool
	dl := newDelivery("a@sender.test", testMessage, "a@secure.test", "b@plain.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	if r := res["a@secure.test"]; r.Err == nil || r.Enhanced != "4.7.5" {
		t.Errorf("a@secure.test = %v (%s), want a temporary TLS failure under verify", r.Err, r.Enhanced)
	}
	if r := res["b@plain.test"]; r.Err != nil || r.TLS == "" {
		t.Errorf("b@plain.test = %v TLS %q, want delivered over opportunistic TLS", r.Err, r.TLS)
	}
	msgs, _ := s.Wait(waitCtx(t), 1)
	if len(msgs) != 1 || strings.Join(msgs[0].To, " ") != "b@plain.test" {
		t.Errorf("sink got %v, want one message to b@plain.test", msgs)
	}
}

func TestPolicyFor(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, map[string]string{"*": "smtp:[relay.upstream.test]"})
	cfg.Delivery.TLS = config.DeliveryTLSMay
	cfg.Delivery.TLSPolicy = map[string]config.DeliveryTLS{
		"verify.test":         config.DeliveryTLSVerify,
		".sub.test":           config.DeliveryTLSEncrypt,
		"relay.upstream.test": config.DeliveryTLSEncrypt,
		"loose.test":          config.DeliveryTLSMay,
	}
	d := New(cfg, route.New(cfg, fakeDNS()), slog.New(slog.DiscardHandler))
	hop := func(s string) config.NextHop {
		h, err := config.ParseNextHop(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		rcpt string
		hop  string
		want config.DeliveryTLS
	}{
		{"a@none.test", "smtp:none.test", config.DeliveryTLSMay},
		{"a@verify.test", "smtp:verify.test", config.DeliveryTLSVerify},
		{"a@x.sub.test", "smtp:x.sub.test", config.DeliveryTLSEncrypt},
		{"a@sub.test", "smtp:sub.test", config.DeliveryTLSMay},
		{"a@none.test", "smtp:[relay.upstream.test]", config.DeliveryTLSEncrypt},
		{"a@verify.test", "smtp:[relay.upstream.test]", config.DeliveryTLSVerify},
		{"a@loose.test", "smtp:[relay.upstream.test]", config.DeliveryTLSEncrypt},
	}
	for _, tt := range tests {
		if got := d.policyFor(tt.rcpt, hop(tt.hop)); got != tt.want {
			t.Errorf("policyFor(%s, %s) = %s, want %s", tt.rcpt, tt.hop, got, tt.want)
		}
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
