package smtpd

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"smarthost/config"
	"smarthost/relay/dnsbl"
	"smarthost/relay/greylist"
	"smarthost/relay/inbound"
	"smarthost/relay/recipients"
	"smarthost/relay/resolve/resolvetest"
)

// knownRecipients accepts only the listed addresses and answers a
// temporary failure for "slow@…", like a verification probe to a home
// server that is down.
type knownRecipients map[string]bool

func (k knownRecipients) Check(_ context.Context, rcpt string) recipients.Result {
	switch {
	case k[rcpt]:
		return recipients.Result{Verdict: recipients.Accept}
	case strings.HasPrefix(rcpt, "slow@"):
		return recipients.Result{Verdict: recipients.TempFail, Reason: "probe: connection refused"}
	}
	return recipients.Result{Verdict: recipients.RejectUnknown, Reason: "not in relay_recipients"}
}

// firstTimeGreylist defers every triplet once and passes it the second
// time, as greylisting with no delay would.
type firstTimeGreylist struct {
	mu   sync.Mutex
	seen map[greylist.Triplet]bool
}

func (g *firstTimeGreylist) Check(t greylist.Triplet) (greylist.Decision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen[t] {
		return greylist.Decision{Pass: true}, nil
	}
	g.seen[t] = true
	return greylist.Decision{RetryAfter: 300e9}, nil
}

func TestMX_RecipientValidationAndGreylisting(t *testing.T) {
	t.Parallel()
	grey := &firstTimeGreylist{seen: map[greylist.Triplet]bool{}}
	e := startServer(t, envOptions{role: config.RoleMX, options: func(o *Options) {
		o.Recipients = knownRecipients{"alice@example.com": true}
		o.Greylist = grey
	}})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<sender@outside.example>", "250 ")
	d.expect("RCPT TO:<nobody@example.com>", "550 5.1.1 ")
	d.expect("RCPT TO:<slow@example.com>", "450 4.1.1 ")
	d.expect("RCPT TO:<alice@example.com>", "450 4.2.0 Greylisted")
	d.expect("RCPT TO:<alice@example.com>", "250 ")
	d.expect("RCPT TO:<user@elsewhere.example>", "554 5.7.1 Relay access denied")
	if len(grey.seen) != 1 {
		t.Errorf("greylist saw %d triplets, want 1 (unknown recipients are refused before greylisting)", len(grey.seen))
	}
}

func TestMX_TrustedClientsSkipGreylistingAndBlocklists(t *testing.T) {
	t.Parallel()
	grey := &firstTimeGreylist{seen: map[greylist.Triplet]bool{}}
	dns := &resolvetest.Resolver{IP: map[string][]netip.Addr{"1.0.0.127.bl.example": {netip.MustParseAddr("127.0.0.2")}}}
	e := startServer(t, envOptions{role: config.RoleMX, trusted: []string{"127.0.0.0/8"}, options: func(o *Options) {
		o.Greylist = grey
		o.DNSBL = dnsbl.New([]string{"bl.example"}, dns)
	}})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<sender@outside.example>", "250 ")
	d.expect("RCPT TO:<alice@example.com>", "250 ")
}

func TestMX_BlocklistedClientRefusedNamingTheList(t *testing.T) {
	t.Parallel()
	dns := &resolvetest.Resolver{IP: map[string][]netip.Addr{"1.0.0.127.bl.example": {netip.MustParseAddr("127.0.0.2")}}}
	e := startServer(t, envOptions{role: config.RoleMX, options: func(o *Options) {
		o.DNSBL = dnsbl.New([]string{"clean.example", "bl.example"}, dns)
	}})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<sender@outside.example>", "250 ")
	d.expect("RCPT TO:<alice@example.com>", "554 5.7.1 Service unavailable; client host blocked using bl.example")
	// The relay check still comes first: nothing about lists is said to a
	// relay attempt.
	d.expect("RCPT TO:<user@elsewhere.example>", "554 5.7.1 Relay access denied")
	if n := len(dns.Queries()); n != 2 {
		t.Errorf("%d DNSBL queries, want 2 (one per zone, once per session): %v", n, dns.Queries())
	}
}

// inboundDNS publishes SPF and DMARC records for the inbound tests; the
// client is 127.0.0.1.
func inboundDNS() *resolvetest.Resolver {
	return &resolvetest.Resolver{
		TXT: map[string][]string{
			"pass.example":          {"v=spf1 ip4:127.0.0.1 -all"},
			"_dmarc.pass.example":   {"v=DMARC1; p=reject"},
			"fail.example":          {"v=spf1 -all"},
			"reject.example":        {"v=spf1 ~all"},
			"_dmarc.reject.example": {"v=DMARC1; p=reject"},
		},
		ServFail: map[string]bool{"temp.example": true, "_dmarc.temp.example": true},
		NXDomain: map[string]bool{"_dmarc.fail.example": true, "_dmarc.example": true},
	}
}

// TestMX_InboundChecks runs the real relay/inbound checks in the DATA path:
// headers added above our Received line, forged results removed, and under
// enforce only what the sender's domain asks for refused.
func TestMX_InboundChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mode, from, want string
		header                 []string // in the stored prepend, when queued
	}{
		{"pass", "enforce", "pass.example", "250 ", []string{"Received-SPF: pass", "spf=pass", "dmarc=pass"}},
		{"spf fail tagged", "tag", "fail.example", "250 ", []string{"Received-SPF: fail", "spf=fail"}},
		{"spf fail enforced", "enforce", "fail.example", "550 5.7.23 ", nil},
		{"dmarc reject enforced", "enforce", "reject.example", "550 5.7.1 Message rejected by the sender domain's policy", nil},
		{"dns trouble never rejects", "enforce", "temp.example", "451 4.4.3 ", nil},
		{"dns trouble tagged", "tag", "temp.example", "250 ", []string{"spf=temperror"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode := config.CheckMode(tt.mode)
			checker, err := inbound.New(inbound.Options{Hostname: "mail.example.org", Resolver: inboundDNS(),
				Config: config.Inbound{SPF: mode, DKIM: mode, DMARC: mode, QuarantineHeader: "X-Spam-Flag: YES"}})
			if err != nil {
				t.Fatal(err)
			}
			e := startServer(t, envOptions{role: config.RoleMX, options: func(o *Options) { o.Inbound = checker }})
			d := e.dial()
			d.hello()
			d.expect("MAIL FROM:<sender@"+tt.from+">", "250 ")
			d.expect("RCPT TO:<alice@example.com>", "250 ")
			d.expect("DATA", "354 ")
			d.send("Authentication-Results: mail.example.org; dmarc=pass header.from=" + tt.from + "\r\n" +
				"Authentication-Results: other.example; spf=pass\r\n" +
				"From: sender@" + tt.from + "\r\nSubject: hi\r\n\r\nbody\r\n.\r\n")
			d.expect("", tt.want)
			msgs := e.spool.messages()
			if tt.header == nil {
				if len(msgs) != 0 {
					t.Fatalf("a refused message was queued")
				}
				if !strings.Contains(e.logs.String(), "checks=") {
					t.Errorf("rejected line lacks the check summary:\n%s", e.logs.String())
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("queued %d messages, want 1", len(msgs))
			}
			prepend, data := string(msgs[0].Header), string(msgs[0].Data)
			for _, h := range tt.header {
				if !strings.Contains(prepend, h) {
					t.Errorf("prepended header lacks %q:\n%s", h, prepend)
				}
			}
			if strings.Index(prepend, "Authentication-Results: mail.example.org") > strings.Index(prepend, "Received: from") {
				t.Errorf("results are not above our Received line:\n%s", prepend)
			}
			if strings.Contains(data, "Authentication-Results: mail.example.org") || !strings.Contains(data, "Authentication-Results: other.example; spf=pass") {
				t.Errorf("stored header: want the forged result removed and the other kept:\n%s", data)
			}
		})
	}
}
