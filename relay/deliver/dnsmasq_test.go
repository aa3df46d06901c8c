package deliver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"smarthost/relay/interop"
	"smarthost/relay/resolve"
	"smarthost/relay/sink"
)

// TestDeliver_EndToEndWithDnsmasq routes one message through a real DNS
// server: MX preference with the best MX down, A fallback, null MX and a
// non-existent domain, each recipient with its own outcome. MX addresses
// are 127.0.0.x on port 25; the injected dialer maps them to sinks.
func TestDeliver_EndToEndWithDnsmasq(t *testing.T) {
	t.Parallel()
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{"example.test"},
		MX: map[string][]string{
			"example.test":      {"20 mx2.example.test", "10 mx1.example.test"},
			"null.example.test": {"0 ."},
		},
		Hosts: map[string][]string{
			"mx1.example.test":  {"127.0.0.11"},
			"mx2.example.test":  {"127.0.0.12"},
			"nomx.example.test": {"127.0.0.13"},
		},
	})
	mx2, mx2Addr := startSink(t, sink.Options{})
	aHost, aHostAddr := startSink(t, sink.Options{})
	n := newTestNet()
	// 127.0.0.11:25 (mx1) stays unmapped: connection refused.
	n.route("127.0.0.12:25", mx2Addr)
	n.route("127.0.0.13:25", aHostAddr)
	d := newDeliverer(t, testConfig(t, nil), resolve.New(dns.Addr, 0), n)

	dl := newDelivery("a@sender.test", testMessage,
		"a@example.test", "c@nomx.example.test", "d@null.example.test", "b@example.test", "e@nowhere.example.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	tests := []struct {
		rcpt          string
		wantMX        string // delivered via; "" for a failure
		wantPermanent bool
		wantEnhanced  string
	}{
		{"a@example.test", "mx2.example.test[127.0.0.12]:25", false, "2.0.0"},
		{"b@example.test", "mx2.example.test[127.0.0.12]:25", false, "2.0.0"},
		{"c@nomx.example.test", "nomx.example.test[127.0.0.13]:25", false, "2.0.0"},
		{"d@null.example.test", "", true, "5.1.10"},
		{"e@nowhere.example.test", "", true, "5.1.2"},
	}
	for _, tt := range tests {
		r := res[tt.rcpt]
		if (r.Err == nil) != (tt.wantMX != "") || r.Permanent != tt.wantPermanent || r.Enhanced != tt.wantEnhanced || (tt.wantMX != "" && r.MX != tt.wantMX) {
			t.Errorf("%s = Err %v Permanent %v Enhanced %q MX %q; want via %q, permanent %v, %s", tt.rcpt, r.Err, r.Permanent, r.Enhanced, r.MX, tt.wantMX, tt.wantPermanent, tt.wantEnhanced)
		}
	}
	if dials := n.Dials(); !slices.Equal(dials, []string{"127.0.0.11:25", "127.0.0.12:25", "127.0.0.13:25"}) {
		t.Errorf("dials = %v, want mx1 (refused), mx2, then the A record host", dials)
	}
	if msgs, err := mx2.Wait(waitCtx(t), 1); err != nil || strings.Join(msgs[0].To, " ") != "a@example.test b@example.test" {
		t.Errorf("mx2 got %v (%v), want one transaction for a@ and b@example.test", msgs, err)
	}
	if msgs, err := aHost.Wait(waitCtx(t), 1); err != nil || string(msgs[0].Data) != testMessage {
		t.Errorf("A-record host got %v (%v), want the message intact", msgs, err)
	}
}
