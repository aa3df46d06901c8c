package main

// Issue 6: the home-server scenario end to end, the way the people we
// build for will use it — an existing Postfix at home pointed at
// smarthost with the README's settings — with real software on loopback
// only:
//
//   - DNS: dnsmasq publishes MX, A, SPF, DKIM and DMARC records for the
//     three domains of the README's guide, under .test (see below), and
//     smarthost asks it through [dns] server.
//   - smarthost, as in systemd/smarthost.toml: "submissions" (465,
//     implicit TLS) and "submission" (587, STARTTLS) for users home (the
//     home Postfix) and alice (a phone), an mx listener standing in for
//     port 25, a DKIM key for the home domain, and the transport entry
//     that sends the home domain to the home Postfix.
//   - The home Postfix: relayhost smarthost's 465 port with the main.cf
//     settings of the README's "The home Postfix", read from README.md,
//     receiving the home domain on a port of its own (10025 in the guide).
//   - The outside world: a second Postfix, the MX of outside.test,
//     offering STARTTLS and knowing one user. smarthost finds it through
//     the MX record and dials its port 25, which the test's dialer maps
//     to the instance's real port (binding port 25 would need it free and
//     would serialise the tests).
//
// The guide's names are real, registered domains (example.org and friends
// are IANA's, and do resolve); a lookup that escaped to the system
// resolver would reach the Internet and might even succeed. The suite
// uses names under .test (RFC 2606) that only our dnsmasq answers, so
// such a lookup fails instead:
//
//	README               suite
//	mail.example.org     mail.vps.test      smarthost, the VPS
//	example.com          home.test          the home domain, a relay domain
//	home.example.com     server.home.test   the home Postfix
//	example.net          outside.test       an outside recipient's domain
//
// trusted_networks is empty, unlike the example configuration's loopback:
// here every peer is on loopback, where on the VPS the home server,
// phones and outside MTAs all come from the Internet, so loopback plays
// the Internet and must not be trusted.

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"smarthost/relay/interop"
)

const (
	vpsHostname   = "mail.vps.test"
	outsideDomain = "outside.test"
	outsideMX     = "mx.outside.test"
	// outsideMXAddr is the MX host's address in DNS; the dialer maps its
	// port 25 to the outside Postfix.
	outsideMXAddr = "127.0.0.20"
	// friend is the outside Postfix's one user.
	friend = "friend@" + outsideDomain

	homeUser, homePassword   = "home", "the home server's password"
	phoneUser, phonePassword = "alice", "correct horse battery staple"
	dkimSelector             = "s2026"
)

// homeMessage is a message from alice at home, LF line ends as a user's
// mail program hands it to sendmail.
func homeMessage(id, subject string, to ...string) []byte {
	return []byte("From: Alice <alice@" + homeDomain + ">\nTo: " + strings.Join(to, ", ") + "\nSubject: " + subject +
		"\nDate: Sat, 21 Nov 2026 06:00:00 +0000\nMessage-ID: <" + id + ">\n\nHello from home.\n")
}

// checkReceived checks the Received fields of a message, newest first:
// one per hop, each containing the strings given for it.
func checkReceived(t *testing.T, msg []byte, hops ...[]string) {
	t.Helper()
	got := headerValues(msg, "Received")
	if len(got) != len(hops) {
		t.Errorf("%d Received fields, want %d:\n%s", len(got), len(hops), strings.Join(got, "\n"))
		return
	}
	for i, wants := range hops {
		for _, w := range wants {
			if !strings.Contains(got[i], w) {
				t.Errorf("Received field %d: %s\nwant it to contain %q", i+1, got[i], w)
			}
		}
	}
}

// Scenario 1: a user at home runs sendmail; the home Postfix relays to
// smarthost over implicit TLS with AUTH (the README's settings);
// smarthost signs for home.test and delivers by MX to outside.test over
// STARTTLS. The message arrives once, signed with d=home.test s=s2026,
// which dkimpy verifies with the key from dnsmasq; its Received fields
// show both TLS hops and the authenticated user; nothing stays queued.
func TestE2E_Home1_SendmailThroughSmarthostToTheOutside(t *testing.T) {
	t.Parallel()
	env := startHomeEnv(t)
	env.home.Sendmail(t, "alice@"+homeDomain, []string{friend}, homeMessage("s1@"+homeDomain, "scenario 1", friend))

	got := env.outside.WaitDelivered(t, 1, e2eTimeout)
	env.srv.waitQueueEmpty(t)
	if len(got) != 1 || got[0].Recipient != friend || got[0].Sender != "alice@"+homeDomain {
		t.Fatalf("outside mailbox: %d messages, first for %s from <%s>; want one for %s from <alice@%s>",
			len(got), got[0].Recipient, got[0].Sender, friend, homeDomain)
	}
	msg := crlf(got[0].Raw)
	checkReceived(t, msg,
		[]string{"from " + vpsHostname, "(using TLSv1.3", "by " + outsideMX + " (Postfix) with ESMTPS"},
		[]string{"from " + homeServer, "(using TLSv1.3", "(Authenticated sender: " + homeUser + ")", "by " + vpsHostname + " (smarthost) with ESMTPSA"},
		[]string{"by " + homeServer + " (Postfix, from userid"},
	)
	checkSignatureTags(t, "scenario 1", msg, "relaxed/simple", []e2eKey{env.key})
	if v := dkimpyVerify(t, env.dns.Addr, []dkimpyInput{{Msg: msg, N: 1}}); !v[0][0].OK {
		t.Errorf("dkimpy does not verify the delivered message: %s\n%s", v[0][0].Log, msg)
	}
	if dials := env.dialer.dialed(outsideMXAddr + ":25"); len(dials) != 1 {
		t.Errorf("dials to the MX host %s:25: %d, want 1 (delivery found it through the MX record)", outsideMXAddr, len(dials))
	}
	if q := env.home.Queue(t); len(q) != 0 {
		t.Errorf("the home Postfix still holds %+v", q)
	}
}

// Scenario 2: swaks as a phone. AUTH PLAIN and AUTH LOGIN on 465
// (implicit TLS) and on 587 (STARTTLS) get the message delivered to the
// outside, signed; a wrong password gets 535 5.7.8 and no AUTH at all
// 530 5.7.0, on either port, and those messages go nowhere.
func TestE2E_Home2_PhoneSubmitsOn465And587(t *testing.T) {
	t.Parallel()
	interop.Require(t, "swaks")
	env := startHomeEnv(t)
	implicit := []string{"--port", port(env.srv.addr("submissions")), "--tls-on-connect"}
	starttls := []string{"--port", port(env.srv.addr("submission")), "--tls"}
	login := func(mech, password string) []string {
		return []string{"--auth", mech, "--auth-user", phoneUser, "--auth-password", password}
	}
	tests := []struct {
		name  string
		args  [][]string
		reply string // the reply that decided (a prefix)
		sent  bool
	}{
		{"AUTH PLAIN on 465", [][]string{implicit, login("PLAIN", phonePassword)}, queued, true},
		{"AUTH LOGIN on 465", [][]string{implicit, login("LOGIN", phonePassword)}, queued, true},
		{"AUTH PLAIN on 587", [][]string{starttls, login("PLAIN", phonePassword)}, queued, true},
		{"AUTH LOGIN on 587", [][]string{starttls, login("LOGIN", phonePassword)}, queued, true},
		{"wrong password on 465", [][]string{implicit, login("PLAIN", "wrong")}, "535 5.7.8", false},
		{"wrong password on 587", [][]string{starttls, login("LOGIN", "wrong")}, "535 5.7.8", false},
		{"no AUTH on 465", [][]string{implicit}, "530 5.7.0", false},
		{"no AUTH on 587", [][]string{starttls}, "530 5.7.0", false},
	}
	var want []string
	for _, tt := range tests {
		args := []string{"--server", "127.0.0.1", "--from", "alice@" + homeDomain, "--to", friend, "--header", "Subject: " + tt.name}
		for _, a := range tt.args {
			args = append(args, a...)
		}
		res := runSwaks(t, args...)
		if !res.HasReply(tt.reply) || (res.Exit == 0) != tt.sent {
			t.Errorf("%s: swaks exit %d, replies %q; want %q", tt.name, res.Exit, res.Replies(), tt.reply)
		}
		if tt.sent {
			want = append(want, tt.name)
		}
	}

	env.outside.WaitDelivered(t, len(want), e2eTimeout)
	env.srv.waitQueueEmpty(t)
	var subjects []string
	for _, d := range env.outside.Mailbox(t) {
		subjects = append(subjects, d.Header.Get("Subject"))
		msg := crlf(d.Raw)
		checkSignatureTags(t, d.Header.Get("Subject"), msg, "relaxed/simple", []e2eKey{env.key})
		if rcvd := headerValues(msg, "Received"); len(rcvd) < 2 || !strings.Contains(rcvd[1], "(Authenticated sender: "+phoneUser+")") {
			t.Errorf("%s: smarthost's Received field does not name user %s: %q", d.Header.Get("Subject"), phoneUser, rcvd)
		}
	}
	slices.Sort(subjects)
	slices.Sort(want)
	if !slices.Equal(subjects, want) {
		t.Errorf("the outside received %q, want %q", subjects, want)
	}
}

// Scenario 3: swaks as an outside sender delivers to the mx listener for
// alice@home.test over STARTTLS; smarthost forwards it through the
// transport map to the home Postfix, where it lands with smarthost's
// Received-SPF and Authentication-Results (spf and dmarc pass: the DNS
// permits loopback for outside.test), and without a signature of ours.
func TestE2E_Home3_InboundLandsInTheHomeMailbox(t *testing.T) {
	t.Parallel()
	env := startHomeEnv(t)
	res := runSwaks(t, "--server", "127.0.0.1", "--port", port(env.srv.addr("smtp")), "--tls",
		"--from", friend, "--to", "alice@"+homeDomain, "--header", "Subject: scenario 3")
	if res.Exit != 0 || !res.HasReply(queued) {
		t.Fatalf("swaks exit %d, want the message queued:\n%s", res.Exit, res.Transcript)
	}
	got := env.home.WaitDelivered(t, 1, e2eTimeout)
	env.srv.waitQueueEmpty(t)
	d := got[0]
	if d.Recipient != "alice@"+homeDomain || d.Sender != friend || d.Header.Get("Subject") != "scenario 3" {
		t.Errorf("home mailbox: %q from <%s> to %s; want scenario 3 from <%s> to alice@%s", d.Header.Get("Subject"), d.Sender, d.Recipient, friend, homeDomain)
	}
	msg := crlf(d.Raw)
	checkAuthResults(t, "scenario 3", headerOf(msg, "Authentication-Results"), vpsHostname, []string{
		"spf=pass smtp.mailfrom=" + friend, "dkim=none", "dmarc=pass header.from=" + outsideDomain})
	if rspf := headerOf(msg, "Received-SPF"); !strings.HasPrefix(rspf, "pass ("+vpsHostname+": ") {
		t.Errorf("Received-SPF: %s, want pass by %s", rspf, vpsHostname)
	}
	checkReceived(t, msg,
		[]string{"from " + vpsHostname, "by " + homeServer + " (Postfix) with ESMTP"},
		[]string{"(using TLSv1.3", "by " + vpsHostname + " (smarthost) with ESMTPS"},
	)
	if sigs := headerValues(msg, "DKIM-Signature"); len(sigs) != 0 {
		t.Errorf("inbound mail carries DKIM-Signature fields %q; smarthost never signs inbound mail", sigs)
	}
}

// Scenario 4: with the home Postfix stopped, inbound mail is accepted and
// `smarthost queue list` shows it deferred; after Postfix starts again,
// `smarthost queue flush` delivers it at once (retry is one hour), and
// the queue is empty.
func TestE2E_Home4_HomeDownThenFlushed(t *testing.T) {
	t.Parallel()
	env := startHomeEnv(t)
	env.home.Stop(t)
	res := runSwaks(t, "--server", "127.0.0.1", "--port", port(env.srv.addr("smtp")), "--tls",
		"--from", friend, "--to", "alice@"+homeDomain, "--header", "Subject: scenario 4")
	var id string
	for _, r := range res.Replies() {
		if rest, ok := strings.CutPrefix(r, queued+" "); ok {
			id = rest
		}
	}
	if res.Exit != 0 || id == "" {
		t.Fatalf("swaks exit %d, want the message queued while the home server is down:\n%s", res.Exit, res.Transcript)
	}
	env.srv.waitQueue(t, "deferred once", attemptsDone(1, id))
	runQueueSteps(t, env.srv.Config, []queueStep{
		{"list shows the message deferred", []string{"list"}, 0,
			[]string{id + " ", friend, "alice@" + homeDomain + "  [deferred, 1 attempts]", "connection refused", "in 1 Request."}, nil, ""},
	})

	env.home.Start(t)
	runQueueSteps(t, env.srv.Config, []queueStep{
		{"flush", []string{"flush"}, 0, []string{"flushed"}, nil, ""},
	})
	got := env.home.WaitDelivered(t, 1, e2eTimeout)
	env.srv.waitQueueEmpty(t)
	if s := got[0].Header.Get("Subject"); s != "scenario 4" || len(got) != 1 {
		t.Errorf("home mailbox: %d messages, first %q; want the one sent while it was down", len(got), s)
	}
	runQueueSteps(t, env.srv.Config, []queueStep{
		{"list shows an empty queue", []string{"list"}, 0, []string{"Mail queue is empty"}, []string{id}, ""},
	})
}

// Scenario 5: alice at home writes to friend and to nobody at
// outside.test; the outside Postfix takes friend and refuses nobody with
// 550 5.1.1, so smarthost returns an RFC 3464 DSN to alice, through the
// transport map to the home Postfix: multipart/report with a
// human-readable part, the delivery status (Action: failed, Status 5.1.1,
// the outside MTA's reply) for nobody alone, and the original header.
func TestE2E_Home5_BounceComesHome(t *testing.T) {
	t.Parallel()
	env := startHomeEnv(t)
	nobody := "nobody@" + outsideDomain
	env.home.Sendmail(t, "alice@"+homeDomain, []string{friend, nobody}, homeMessage("s5@"+homeDomain, "scenario 5", friend, nobody))

	if got := env.outside.WaitDelivered(t, 1, e2eTimeout); got[0].Recipient != friend {
		t.Errorf("the outside delivered to %s, want %s", got[0].Recipient, friend)
	}
	bounces := env.home.WaitDelivered(t, 1, e2eTimeout)
	env.srv.waitQueueEmpty(t)
	if len(bounces) != 1 {
		t.Fatalf("home mailbox holds %d messages, want one DSN", len(bounces))
	}
	b := bounces[0]
	if b.Sender != "" || b.Recipient != "alice@"+homeDomain {
		t.Errorf("DSN envelope <%s> → %s, want the null sender → alice@%s", b.Sender, b.Recipient, homeDomain)
	}
	if from := b.Header.Get("From"); !strings.Contains(from, "MAILER-DAEMON@"+vpsHostname) {
		t.Errorf("DSN From: %q, want MAILER-DAEMON@%s", from, vpsHostname)
	}
	dsn := parseDSN(t, crlf(b.Raw))
	if want := []string{"text/plain", "message/delivery-status"}; len(dsn.types) != 3 || !slices.Equal(dsn.types[:2], want) {
		t.Errorf("DSN parts %q, want %q and the original header", dsn.types, want)
	}
	if !bytes.Contains(dsn.original, []byte("Message-ID: <s5@"+homeDomain+">")) {
		t.Errorf("the DSN's returned header lacks the original Message-ID:\n%s", dsn.original)
	}
	if got := dsn.message.Get("Reporting-MTA"); got != "dns; "+vpsHostname {
		t.Errorf("Reporting-MTA: %q, want dns; %s", got, vpsHostname)
	}
	if len(dsn.recipients) != 1 {
		t.Fatalf("the DSN reports %d recipients, want nobody alone", len(dsn.recipients))
	}
	r := dsn.recipients[0]
	for field, want := range map[string]string{
		"Final-Recipient": "rfc822; " + nobody,
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; " + outsideMX,
	} {
		if got := r.Get(field); !strings.EqualFold(got, want) {
			t.Errorf("DSN %s: %q, want %q", field, got, want)
		}
	}
	if got := r.Get("Diagnostic-Code"); !strings.Contains(got, "550 5.1.1") {
		t.Errorf("DSN Diagnostic-Code: %q, want the outside MTA's 550 5.1.1", got)
	}
}

// Scenario 6: smarthost is no open relay. An outside client trying to
// reach friend@outside.test through the mx listener gets 554 5.7.1, also
// with sender-specified routing through the home domain; on 465 and 587
// without AUTH it gets 530 5.7.0; the mx listener offers no AUTH at all.
// The same client's mail for the home domain is taken (so the refusals
// are about relaying, not a broken listener), and nothing reaches the
// outside.
func TestE2E_Home6_NoOpenRelay(t *testing.T) {
	t.Parallel()
	env := startHomeEnv(t)
	mx := []string{"--port", port(env.srv.addr("smtp")), "--tls"}
	tests := []struct {
		name   string
		to     string
		args   []string
		reply  string
		swaksX string // a line of swaks' own
	}{
		{"mx listener", friend, mx, "554 5.7.1 Relay access denied", ""},
		{"mx listener, percent hack", "friend%" + outsideDomain + "@" + homeDomain, mx, "554 5.7.1", ""},
		{"mx listener, AUTH", friend, append(slices.Clone(mx), "--auth", "PLAIN", "--auth-user", phoneUser, "--auth-password", phonePassword),
			"", "*** Host did not advertise authentication"},
		{"465 without AUTH", friend, []string{"--port", port(env.srv.addr("submissions")), "--tls-on-connect"}, "530 5.7.0", ""},
		{"587 without AUTH", friend, []string{"--port", port(env.srv.addr("submission")), "--tls"}, "530 5.7.0", ""},
	}
	for _, tt := range tests {
		res := runSwaks(t, append([]string{"--server", "127.0.0.1", "--from", "mallory@" + outsideDomain, "--to", tt.to,
			"--header", "Subject: relay attempt: " + tt.name}, tt.args...)...)
		if res.Exit == 0 || !res.HasReply(tt.reply) || !strings.Contains(res.Transcript, tt.swaksX) {
			t.Errorf("%s: swaks exit %d, replies %q; want refused with %q %q", tt.name, res.Exit, res.Replies(), tt.reply, tt.swaksX)
		}
		if res.HasReply(queued) {
			t.Errorf("%s: the relay attempt was queued", tt.name)
		}
	}

	res := runSwaks(t, append([]string{"--server", "127.0.0.1", "--from", "mallory@" + outsideDomain, "--to", "alice@" + homeDomain,
		"--header", "Subject: control"}, mx...)...)
	if res.Exit != 0 {
		t.Fatalf("control, the same client to the home domain: swaks exit %d:\n%s", res.Exit, res.Transcript)
	}
	env.home.WaitDelivered(t, 1, e2eTimeout)
	env.srv.waitQueueEmpty(t)
	if got := env.outside.Mailbox(t); len(got) != 0 {
		t.Errorf("the outside received %d messages through smarthost, want none", len(got))
	}
	if dials := env.dialer.dialed(outsideMXAddr + ":25"); len(dials) != 0 {
		t.Errorf("smarthost connected to the outside MX %d times, want never", len(dials))
	}
}
