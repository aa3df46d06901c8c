package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message"

	"smarthost/relay/interop"
	"smarthost/relay/sink"
)

// mxDialer stands in for the Internet's port 25: MX delivery always dials
// port 25, so each MX address of the test zone is mapped to a sink's real
// loopback port, and every dial is recorded in order. An address with no
// mapping fails without touching the network; addresses on 127.0.0.1
// (transport entries with an explicit port) are dialled as they are.
type mxDialer struct {
	routes map[string]string // "127.0.0.11:25" → the address really dialled
	mu     sync.Mutex
	dials  []string
}

func (d *mxDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, addr)
	d.mu.Unlock()
	to, ok := d.routes[addr]
	if !ok {
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			return nil, fmt.Errorf("dial %s: no such host in this test", addr)
		}
		to = addr
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

// dialed returns, in order, the dials to any of addrs.
func (d *mxDialer) dialed(addrs ...string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, a := range d.dials {
		if slices.Contains(addrs, a) {
			out = append(out, a)
		}
	}
	return out
}

// TestE2E_RoutesThroughRealDNS is issue 3's routing against a real DNS
// server: with no "*" transport, smarthost looks up each recipient
// domain's MX records at the dnsmasq named in [dns] server, and one
// message to four domains shows the rules: the best MX (lowest preference,
// although dnsmasq lists it second) gets the mail and the backup is not
// tried; when the best MX refuses connections the second one gets it; a
// domain without MX records is delivered to its A record; and a null MX
// (RFC 7505) fails at once with 5.1.10, which comes back to the sender as
// an RFC 3464 DSN that go-message parses, reporting that recipient alone.
func TestE2E_RoutesThroughRealDNS(t *testing.T) {
	t.Parallel()
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{"e2e.test"},
		MX: map[string][]string{
			"pref.e2e.test":     {"20 mx2.pref.e2e.test", "10 mx1.pref.e2e.test"},
			"fallback.e2e.test": {"10 down.fallback.e2e.test", "20 up.fallback.e2e.test"},
			"null.e2e.test":     {"0 ."},
		},
		Hosts: map[string][]string{
			"mx1.pref.e2e.test":      {"127.0.0.11"},
			"mx2.pref.e2e.test":      {"127.0.0.12"},
			"down.fallback.e2e.test": {"127.0.0.21"},
			"up.fallback.e2e.test":   {"127.0.0.22"},
			"nomx.e2e.test":          {"127.0.0.31"},
		},
	})
	prefBest, prefBestAddr := startSink(t, sink.Options{Hostname: "mx1.pref.e2e.test"})
	prefBackup, prefBackupAddr := startSink(t, sink.Options{Hostname: "mx2.pref.e2e.test"})
	fallbackUp, fallbackUpAddr := startSink(t, sink.Options{Hostname: "up.fallback.e2e.test"})
	aRecord, aRecordAddr := startSink(t, sink.Options{Hostname: "nomx.e2e.test"})
	senderHome, senderHomeAddr := startSink(t, sink.Options{Hostname: "home.sender.e2e.test"})
	dialer := &mxDialer{routes: map[string]string{
		"127.0.0.11:25": prefBestAddr,
		"127.0.0.12:25": prefBackupAddr,
		"127.0.0.21:25": refusingAddr(t),
		"127.0.0.22:25": fallbackUpAddr,
		"127.0.0.31:25": aRecordAddr,
	}}
	c := e2eConfig{
		Dir:       t.TempDir(),
		Trusted:   []string{"127.0.0.0/8"},
		Listeners: []e2eListener{{Name: "submission", TLS: "none", Role: "submission"}},
		// Only the sender's own domain has a transport entry, so that
		// the bounce comes home; everything else goes by MX.
		Transport: map[string]string{"sender.e2e.test": nextHop(senderHomeAddr)},
		DNS:       dns.Addr,
	}
	srv := startRelay(t, c, dialer.Dial)

	msg := "From: alice@sender.e2e.test\r\nTo: undisclosed-recipients:;\r\nSubject: four domains\r\n" +
		"Message-ID: <routing@sender.e2e.test>\r\n\r\nOne message, four next hops.\r\n"
	rcpts := []string{"a@pref.e2e.test", "b@fallback.e2e.test", "c@nomx.e2e.test", "d@null.e2e.test"}
	id := submit(t, srv.addr("submission"), "alice@sender.e2e.test", rcpts, msg)

	tests := []struct {
		name      string
		sink      *sink.Sink
		wantRcpt  string
		wantDials []string // in order, among the addresses of this domain
	}{
		{"best MX first", prefBest, "a@pref.e2e.test", []string{"127.0.0.11:25"}},
		{"second MX when the first refuses connections", fallbackUp, "b@fallback.e2e.test", []string{"127.0.0.21:25", "127.0.0.22:25"}},
		{"A record when there is no MX", aRecord, "c@nomx.e2e.test", []string{"127.0.0.31:25"}},
	}
	for _, tt := range tests {
		got := waitMessages(t, tt.sink, 1)
		if len(got) != 1 || !slices.Equal(got[0].To, []string{tt.wantRcpt}) || !bytes.Contains(got[0].Data, []byte("four next hops")) {
			t.Errorf("%s: sink received %d messages, first for %q; want one, for %s", tt.name, len(got), got[0].To, tt.wantRcpt)
		}
	}
	srv.waitQueueEmpty(t)
	for _, tt := range tests {
		domainAddrs := map[string][]string{
			"a@pref.e2e.test":     {"127.0.0.11:25", "127.0.0.12:25"},
			"b@fallback.e2e.test": {"127.0.0.21:25", "127.0.0.22:25"},
			"c@nomx.e2e.test":     {"127.0.0.31:25"},
		}[tt.wantRcpt]
		if got := dialer.dialed(domainAddrs...); !slices.Equal(got, tt.wantDials) {
			t.Errorf("%s: dialled %q, want %q", tt.name, got, tt.wantDials)
		}
	}
	if n := len(prefBackup.Messages()); n != 0 {
		t.Errorf("the backup MX of pref.e2e.test received %d messages, want 0", n)
	}

	bounces := senderHome.Messages()
	if len(bounces) != 1 {
		t.Fatalf("the sender's home received %d messages, want one DSN", len(bounces))
	}
	dsn := bounces[0]
	if dsn.From != "" || !slices.Equal(dsn.To, []string{"alice@sender.e2e.test"}) {
		t.Errorf("DSN envelope <%s> → %q, want the null sender → alice@sender.e2e.test", dsn.From, dsn.To)
	}
	checkDSN(t, dsn.Data, id)
}

// checkDSN parses a bounce with go-message and checks it is the RFC 3464
// report of d@null.e2e.test's null MX, and of nothing else.
func checkDSN(t *testing.T, data []byte, queueID string) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, data)
	}
	if from := e.Header.Get("From"); !strings.Contains(from, "MAILER-DAEMON@"+e2eHostname) {
		t.Errorf("DSN From: %q, want MAILER-DAEMON@%s", from, e2eHostname)
	}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %q %v (%v), want multipart/report; report-type=delivery-status", ct, params, err)
	}
	mr := e.MultipartReader()
	var types []string
	var status, headers []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		pt, _, _ := p.Header.ContentType()
		types = append(types, pt)
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("DSN part %s: %v", pt, err)
		}
		switch pt {
		case "message/delivery-status":
			status = body
		case "text/rfc822-headers", "message/rfc822-headers", "message/rfc822":
			headers = body
		}
	}
	// RFC 3464 §2 / RFC 6522: a human-readable part first, then the
	// machine-readable status, then the original message or its header.
	if len(types) != 3 || types[0] != "text/plain" || types[1] != "message/delivery-status" {
		t.Errorf("DSN parts %q, want text/plain, message/delivery-status, then the original header", types)
	}
	if !bytes.Contains(headers, []byte("Message-ID: <routing@sender.e2e.test>")) {
		t.Errorf("DSN's returned header lacks the original Message-ID:\n%s", headers)
	}

	groups := statusGroups(t, status)
	if len(groups) != 2 {
		t.Fatalf("delivery-status has %d field groups, want per-message and one recipient (only d@ failed):\n%s", len(groups), status)
	}
	msgFields, rcpt := groups[0], groups[1]
	if got := msgFields.Get("Reporting-MTA"); got != "dns; "+e2eHostname {
		t.Errorf("Reporting-MTA: %q, want %q", got, "dns; "+e2eHostname)
	}
	if got := msgFields.Get("X-Smarthost-Queue-ID"); got != queueID {
		t.Errorf("X-Smarthost-Queue-ID: %q, want the bounced message's queue ID %s", got, queueID)
	}
	want := map[string]string{
		"Final-Recipient": "rfc822; d@null.e2e.test",
		"Action":          "failed",
		"Status":          "5.1.10",
	}
	for field, w := range want {
		if got := rcpt.Get(field); !strings.EqualFold(got, w) {
			t.Errorf("DSN %s: %q, want %q", field, got, w)
		}
	}
	if got := rcpt.Get("Diagnostic-Code"); !strings.Contains(got, "null MX") {
		t.Errorf("DSN Diagnostic-Code: %q, want it to name the null MX", got)
	}
}

// statusGroups splits a message/delivery-status body into its field
// groups (RFC 3464 §2.1: per-message fields, then one group per
// recipient, separated by blank lines).
func statusGroups(t *testing.T, body []byte) []textproto.MIMEHeader {
	t.Helper()
	var groups []textproto.MIMEHeader
	for _, g := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(g) == "" {
			continue
		}
		h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(strings.TrimSpace(g) + "\n\n"))).ReadMIMEHeader()
		if err != nil {
			t.Fatalf("delivery-status group %q: %v", g, err)
		}
		groups = append(groups, h)
	}
	return groups
}
