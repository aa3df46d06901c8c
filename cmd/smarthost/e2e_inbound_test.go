package main

// Issue 5 end to end: smarthost as the MX of a home domain, between the
// Internet (swaks and go-smtp clients on loopback, with dkimpy signing as
// the senders' own MTAs would) and a real Postfix as the home server,
// reached through a transport entry. A real DNS server (dnsmasq) publishes
// the senders' SPF, DKIM and DMARC records and the test blocklist; [dns]
// server points at it, and every name is under .test.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"smarthost/queue"
	"smarthost/relay/interop"
)

// inboundCase is one message sent to the mx listener.
type inboundCase struct {
	name     string
	mailFrom string
	from     string  // the From: address
	key      *e2eKey // dkimpy signs the message with it (d=good.test; s=s1)
	// forged are Authentication-Results fields claiming our authserv-id,
	// on top of the message; smarthost must remove exactly these.
	forged []string
	// kept are header fields on top of the message that must arrive.
	kept []string
	// wantReply is the reply to the end of DATA.
	wantReply string
	// For delivered messages: the first word of Received-SPF ("" when SPF
	// adds none), the results of our Authentication-Results, and whether
	// the quarantine field was added.
	wantSPF        string
	wantAR         []string
	wantQuarantine bool
	// wantVerifies is whether dkimpy verifies the signature of the copy
	// in the home Postfix's mailbox.
	wantVerifies bool
}

const queued = "250 2.0.0 Ok: queued as"

// inboundCases are the messages of TestE2E_InboundChecksReachHomePostfix
// for each mode of [inbound] spf, dkim and dmarc.
func inboundCases(env *inboundEnv) map[string][]inboundCase {
	good, wrong := &env.key, &env.wrongKey
	return map[string][]inboundCase{
		"tag": {
			{name: "signed by the published key", mailFrom: "alice@good.test", from: "alice@good.test", key: good,
				wantReply: queued, wantSPF: "pass", wantVerifies: true, wantAR: []string{
					"spf=pass smtp.mailfrom=alice@good.test", "dkim=pass header.d=good.test header.s=s1 header.a=rsa-sha256",
					"dmarc=pass header.from=good.test polrec.p=reject"}},
			{name: "signed by a wrong key", mailFrom: "mallory@plain.test", from: "alice@good.test", key: wrong,
				wantReply: queued, wantSPF: "none", wantAR: []string{
					"spf=none smtp.mailfrom=mallory@plain.test", "dkim=fail header.d=good.test header.s=s1",
					"dmarc=fail header.from=good.test policy.dmarc=reject"}},
			{name: "unsigned, no records", mailFrom: "bob@plain.test", from: "bob@plain.test",
				wantReply: queued, wantSPF: "none", wantAR: []string{
					"spf=none smtp.mailfrom=bob@plain.test", "dkim=none", `dmarc=none header.from=plain.test`}},
			{name: "forged From", mailFrom: "mallory@plain.test", from: "ceo@good.test",
				wantReply: queued, wantSPF: "none", wantAR: []string{
					"spf=none smtp.mailfrom=mallory@plain.test", "dkim=none",
					"dmarc=fail header.from=good.test policy.dmarc=reject"}},
			{name: "SPF -all fails", mailFrom: "carol@spffail.test", from: "carol@spffail.test",
				wantReply: queued, wantSPF: "fail", wantAR: []string{
					"spf=fail smtp.mailfrom=carol@spffail.test", "dkim=none", "dmarc=none header.from=spffail.test"}},
			{name: "DMARC p=quarantine fails", mailFrom: "mallory@plain.test", from: "news@quarantine.test",
				wantReply: queued, wantSPF: "none", wantAR: []string{
					"spf=none smtp.mailfrom=mallory@plain.test", "dkim=none",
					"dmarc=fail header.from=quarantine.test policy.dmarc=quarantine"}},
			{name: "DNS temperror", mailFrom: "dave@refused.test", from: "dave@refused.test",
				wantReply: queued, wantSPF: "temperror", wantAR: []string{
					"spf=temperror smtp.mailfrom=dave@refused.test", "dkim=none", "dmarc=temperror header.from=refused.test"}},
			{name: "forged Authentication-Results", mailFrom: "bob@plain.test", from: "bob@plain.test",
				forged: []string{
					"Authentication-Results: " + e2eHostname + "; dkim=pass header.d=good.test; dmarc=pass header.from=good.test",
					"Authentication-Results: " + strings.ToUpper(e2eHostname) + " (case and comment\r\n\tdo not matter); spf=pass smtp.mailfrom=good.test",
				},
				kept:      []string{"Authentication-Results: mx.plain.test; spf=pass smtp.mailfrom=plain.test"},
				wantReply: queued, wantSPF: "none", wantAR: []string{
					"spf=none smtp.mailfrom=bob@plain.test", "dkim=none", "dmarc=none header.from=plain.test"}},
		},
		"enforce": {
			{name: "signed by the published key", mailFrom: "alice@good.test", from: "alice@good.test", key: good,
				wantReply: queued, wantSPF: "pass", wantVerifies: true, wantAR: []string{
					"spf=pass smtp.mailfrom=alice@good.test", "dkim=pass header.d=good.test header.s=s1",
					"dmarc=pass header.from=good.test"}},
			// RFC 6376 §6.3: a failed signature is like none; SPF is
			// aligned, so DMARC passes and nothing is refused.
			{name: "signed by a wrong key, SPF aligned", mailFrom: "alice@good.test", from: "alice@good.test", key: wrong,
				wantReply: queued, wantSPF: "pass", wantAR: []string{
					"spf=pass smtp.mailfrom=alice@good.test", "dkim=fail header.d=good.test header.s=s1",
					"dmarc=pass header.from=good.test"}},
			{name: "signed by a wrong key, nothing aligned", mailFrom: "mallory@plain.test", from: "alice@good.test", key: wrong,
				wantReply: "550 5.7.1 Message rejected by the sender domain's policy"},
			{name: "unsigned, no records", mailFrom: "bob@plain.test", from: "bob@plain.test",
				wantReply: queued, wantSPF: "none", wantAR: []string{
					"spf=none smtp.mailfrom=bob@plain.test", "dkim=none", "dmarc=none header.from=plain.test"}},
			{name: "forged From", mailFrom: "mallory@plain.test", from: "ceo@good.test",
				wantReply: "550 5.7.1 Message rejected by the sender domain's policy"},
			{name: "SPF -all fails", mailFrom: "carol@spffail.test", from: "carol@spffail.test",
				wantReply: "550 5.7.23 Sender is not authorized by its domain to send this message"},
			{name: "SPF ~all softfail is only tagged", mailFrom: "erin@softfail.test", from: "erin@softfail.test",
				wantReply: queued, wantSPF: "softfail", wantAR: []string{
					"spf=softfail smtp.mailfrom=erin@softfail.test", "dkim=none", "dmarc=none header.from=softfail.test"}},
			{name: "DMARC p=quarantine fails", mailFrom: "mallory@plain.test", from: "news@quarantine.test",
				wantReply: queued, wantSPF: "none", wantQuarantine: true, wantAR: []string{
					"spf=none smtp.mailfrom=mallory@plain.test", "dkim=none",
					"dmarc=fail header.from=quarantine.test policy.dmarc=quarantine"}},
			// A DNS failure is never a reason to refuse for good.
			{name: "DNS temperror", mailFrom: "dave@refused.test", from: "dave@refused.test",
				wantReply: "451 4.4.3 Temporary DNS failure; try again later"},
		},
	}
}

// TestE2E_InboundChecksReachHomePostfix is issue 5's "pass, fail, none
// and temperror each produce the right header and, under enforce, the
// right reply", through the whole path: swaks, as an outside MTA, sends
// each message over STARTTLS to the mx listener of a smarthost whose SPF,
// DKIM and DMARC checks are all "tag", and of one where they are all
// "enforce"; the senders' records come from dnsmasq, and signatures are
// dkimpy's. What is accepted arrives in the real home Postfix's mailbox
// exactly once, as it was sent byte for byte (original DKIM-Signature
// included, so the home server can verify it again, which dkimpy does),
// with exactly Received-SPF, one Authentication-Results with our hostname
// as authserv-id, the quarantine field where the domain asks for it, and
// our Received field prepended — minus the Authentication-Results fields
// that forged our authserv-id. What enforce refuses gets its reply and
// never arrives.
func TestE2E_InboundChecksReachHomePostfix(t *testing.T) {
	t.Parallel()
	interop.Require(t, "swaks")
	env := startInboundEnv(t)
	dir := t.TempDir()

	type sent struct {
		mode string
		c    inboundCase
		id   string
		data []byte // the message as it went over the wire
		srv  *e2eServer
	}
	var all []*sent
	var signReqs []dkimpySignRequest
	var signed []*sent
	for mode, cases := range inboundCases(&env) {
		c := env.mxConfig(t)
		c.Inbound = &e2eInbound{SPF: mode, DKIM: mode, DMARC: mode, QuarantineHeader: quarantineField}
		srv := startRelay(t, c, nil)
		for i, tc := range cases {
			id := fmt.Sprintf("%s-%d@outside.test", mode, i)
			var top string
			for _, f := range append(slices.Clone(tc.forged), tc.kept...) {
				top += f + "\r\n"
			}
			// swaks ends DATA with CRLF "." CRLF even after a final
			// newline: the message gains an empty line (see wireForm).
			data := append([]byte(top), inboundMessage(tc.from, id, mode+": "+tc.name)...)
			data = append(data, "\r\n"...)
			s := &sent{mode: mode, c: tc, id: "<" + id + ">", data: data, srv: srv}
			all = append(all, s)
			if tc.key != nil {
				signReqs = append(signReqs, dkimpySignRequest{Msg: data, Key: tc.key.File, Domain: tc.key.Domain, Selector: tc.key.Selector})
				signed = append(signed, s)
			}
		}
	}
	for i, sig := range dkimpySign(t, signReqs) {
		signed[i].data = append(sig, signed[i].data...)
	}

	t.Run("send", func(t *testing.T) {
		for i, s := range all {
			t.Run(s.mode+"/"+s.c.name, func(t *testing.T) {
				t.Parallel()
				file := writeMessage(t, dir, fmt.Sprint(i), s.data[:len(s.data)-2])
				res := runSwaks(t, "--server", "127.0.0.1", "--port", port(s.srv.addr("smtp")), "--tls",
					"--from", s.c.mailFrom, "--to", "user@"+homeDomain, "--data", file)
				if !res.HasReply(s.c.wantReply) || (res.Exit == 0) != strings.HasPrefix(s.c.wantReply, "250 ") {
					t.Errorf("end of DATA: swaks exit %d, replies %q; want %q", res.Exit, res.Replies(), s.c.wantReply)
				}
			})
		}
	})

	var accepted int
	for _, s := range all {
		if strings.HasPrefix(s.c.wantReply, "250 ") {
			accepted++
		}
	}
	env.home.WaitDelivered(t, accepted, e2eTimeout)
	for _, s := range all {
		s.srv.waitQueueEmpty(t)
	}
	mailbox := byMessageID(t, env.home.Mailbox(t))
	if len(mailbox) != accepted {
		t.Errorf("home mailbox holds %d messages, want the %d accepted ones", len(mailbox), accepted)
	}

	var verifyIn []dkimpyInput
	var verifyWant []*sent
	for _, s := range all {
		t.Run("check/"+s.mode+"/"+s.c.name, func(t *testing.T) {
			d, ok := mailbox[s.id]
			if !strings.HasPrefix(s.c.wantReply, "250 ") {
				if ok {
					t.Errorf("refused message %s arrived at the home server:\n%s", s.id, d.Raw)
				}
				return
			}
			if !ok {
				t.Fatalf("accepted message %s did not arrive", s.id)
			}
			got := crlf(d.Raw)
			stored := s.data
			for _, f := range s.c.forged {
				stored = []byte(strings.Replace(string(stored), f+"\r\n", "", 1))
			}
			prefix, ok := prependedTo(got, stored)
			if !ok {
				t.Fatalf("the delivered message does not end with the message as sent (forged results removed)\ngot:\n%s\nwant …\n%s", got, stored)
			}
			want := []string{"Return-Path", "X-Original-To", "Delivered-To", "Received"} // the home Postfix's
			if s.c.wantSPF != "" {
				want = append(want, "Received-SPF")
			}
			want = append(want, "Authentication-Results")
			if s.c.wantQuarantine {
				want = append(want, strings.SplitN(quarantineField, ":", 2)[0])
			}
			want = append(want, "Received") // smarthost's
			if names := fieldNames(prefix); !slices.Equal(names, want) {
				t.Errorf("fields prepended: %q, want %q:\n%s", names, want, prefix)
			}
			checkAuthResults(t, s.id, headerOf(prefix, "Authentication-Results"), e2eHostname, s.c.wantAR)
			if s.c.wantSPF != "" {
				rspf := headerOf(prefix, "Received-SPF")
				for _, w := range []string{s.c.wantSPF + " (" + e2eHostname + ": ", "client-ip=127.0.0.1;", s.c.mailFrom, "receiver=" + e2eHostname + ";"} {
					if !strings.Contains(rspf, w) {
						t.Errorf("Received-SPF: %s\nwant it to contain %q", rspf, w)
					}
				}
			}
			wantFlag := ""
			if s.c.wantQuarantine {
				wantFlag = "YES"
			}
			if got := headerOf(prefix, "X-Spam-Flag"); got != wantFlag {
				t.Errorf("X-Spam-Flag: %q, want %q", got, wantFlag)
			}
			rcvd := headerValues(prefix, "Received")
			if len(rcvd) != 2 || !strings.Contains(rcvd[1], "by "+e2eHostname+" (smarthost) with ESMTPS") || !strings.Contains(rcvd[0], "by "+homeServer+" (Postfix)") {
				t.Errorf("Received fields %q, want the home Postfix's over smarthost's ESMTPS one", rcvd)
			}
			if d.Sender != s.c.mailFrom {
				t.Errorf("Return-Path <%s>, want the original envelope sender <%s>", d.Sender, s.c.mailFrom)
			}
			if s.c.key != nil {
				verifyIn = append(verifyIn, dkimpyInput{Msg: got, N: 1})
				verifyWant = append(verifyWant, s)
			}
		})
	}
	if len(verifyIn) == 0 {
		t.Fatal("no signed message arrived to verify at the home server")
	}
	for i, v := range dkimpyVerify(t, env.dns.Addr, verifyIn) {
		s := verifyWant[i]
		if v[0].OK != s.c.wantVerifies {
			t.Errorf("%s/%s: dkimpy verifies the copy in the home mailbox: %v, want %v (dkimpy said: %s)", s.mode, s.c.name, v[0].OK, s.c.wantVerifies, v[0].Log)
		}
	}
}

// TestE2E_InboundRefusesRelayTricksAndUnknownRecipients is issue 5's
// "relay tricks and unknown recipients are refused": on the mx listener,
// with relay_recipients (a list entry and a file entry), recipients of the
// home domain that are not listed get 550 5.1.1, other domains and
// subdomains 554 5.7.1, and sender-specified routing and address
// literals, which the home server might act on, 554 5.7.1 even when they
// end in the home domain. The recipients that were accepted get the
// message at the home Postfix, and nobody else does.
func TestE2E_InboundRefusesRelayTricksAndUnknownRecipients(t *testing.T) {
	t.Parallel()
	env := startInboundEnv(t)
	c := env.mxConfig(t)
	c.RelayRecipients = []string{"alice@" + homeDomain}
	c.RelayRecipientsFile = filepath.Join(c.Dir, "relay_recipients")
	if err := os.WriteFile(c.RelayRecipientsFile, []byte("# the home server's users\nbob@"+homeDomain+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startRelay(t, c, nil)

	d := dialMX(t, srv.addr("smtp"))
	d.cmd("MAIL FROM:<sender@plain.test>", 250)
	for _, step := range []struct {
		rcpt     string
		code     int
		enhanced string
	}{
		{"alice@" + homeDomain, 250, "2.0.0"},
		{"bob@" + homeDomain, 250, "2.0.0"},
		{"Alice@HOME.test", 250, "2.0.0"},
		{"carol@" + homeDomain, 550, "5.1.1"},
		{"friend@outside.test", 554, "5.7.1"},
		{"alice@sub." + homeDomain, 554, "5.7.1"},
		{"friend%outside.test@" + homeDomain, 554, "5.7.1"},
		{"outside.test!friend@" + homeDomain, 554, "5.7.1"},
		{`"friend@outside.test"@` + homeDomain, 554, "5.7.1"},
		{"friend@[127.0.0.1]", 554, "5.7.1"},
	} {
		d.cmd("RCPT TO:<"+step.rcpt+">", step.code, step.enhanced)
	}
	d.cmd("DATA", 354)
	d.cmd(string(inboundMessage("sender@plain.test", "recipients@outside.test", "recipients"))+".", 250, "2.0.0")
	d.cmd("QUIT", 221)

	got := env.home.WaitDelivered(t, 2, e2eTimeout)
	srv.waitQueueEmpty(t)
	var rcpts []string
	for _, m := range env.home.Mailbox(t) {
		rcpts = append(rcpts, m.Recipient)
	}
	slices.Sort(rcpts)
	if want := []string{"alice@" + homeDomain, "bob@" + homeDomain}; !slices.Equal(rcpts, want) {
		t.Errorf("the home Postfix delivered to %q, want %q (%d messages)", rcpts, want, len(got))
	}
}

// TestE2E_InboundVerifiesRecipientsWithPostfix is issue 5's
// verify_recipients against the home server's own recipient check
// (Postfix's virtual_mailbox_maps): a recipient Postfix knows is accepted
// and its mail delivered, one it refuses with 550 5.1.1 is refused with
// 550 5.1.1 at RCPT. With the home server down, a recipient never
// probed gets 450 4.1.1 (a failed probe is never a 550), while the
// answers already known come from the cache: still 250 and 550.
func TestE2E_InboundVerifiesRecipientsWithPostfix(t *testing.T) {
	t.Parallel()
	env := startInboundEnv(t, "alice@"+homeDomain, "bob@"+homeDomain)
	c := env.mxConfig(t)
	c.VerifyRecipients = true
	srv := startRelay(t, c, nil)

	d := dialMX(t, srv.addr("smtp"))
	d.cmd("MAIL FROM:<sender@plain.test>", 250)
	d.cmd("RCPT TO:<alice@"+homeDomain+">", 250, "2.0.0")
	d.cmd("RCPT TO:<nobody@"+homeDomain+">", 550, "5.1.1")
	d.cmd("DATA", 354)
	d.cmd(string(inboundMessage("sender@plain.test", "verified@outside.test", "verified"))+".", 250, "2.0.0")
	d.cmd("QUIT", 221)
	if got := env.home.WaitDelivered(t, 1, e2eTimeout); got[0].Recipient != "alice@"+homeDomain {
		t.Errorf("delivered to %s, want alice@%s", got[0].Recipient, homeDomain)
	}
	srv.waitQueueEmpty(t)

	env.home.Stop(t)
	d = dialMX(t, srv.addr("smtp"))
	d.cmd("MAIL FROM:<sender@plain.test>", 250)
	d.cmd("RCPT TO:<bob@"+homeDomain+">", 450, "4.1.1")
	d.cmd("RCPT TO:<alice@"+homeDomain+">", 250, "2.0.0")
	d.cmd("RCPT TO:<nobody@"+homeDomain+">", 550, "5.1.1")
	d.cmd("QUIT", 221)
}

// TestE2E_InboundDNSBL is issue 5's DNS blocklist: with a list in
// [inbound] dnsbl that lists the client (dnsmasq answers
// 1.0.0.127.bl.test with 127.0.0.2), RCPT is refused with 554 5.7.1
// naming that list, and nothing reaches the home server; with only a list
// that does not list it, the same message is delivered.
func TestE2E_InboundDNSBL(t *testing.T) {
	t.Parallel()
	env := startInboundEnv(t)
	tests := []struct {
		name  string
		lists []string
		want  string // the reply to RCPT, or "" for delivered
	}{
		{"not listed", []string{"clean.test"}, ""},
		{"listed by the second list", []string{"clean.test", "bl.test"}, "554 5.7.1 Service unavailable; client host blocked using bl.test"},
	}
	for i, tt := range tests {
		c := env.mxConfig(t)
		c.Inbound = &e2eInbound{DNSBL: tt.lists}
		srv := startRelay(t, c, nil)
		msg := inboundMessage("bob@plain.test", fmt.Sprintf("dnsbl-%d@outside.test", i), tt.name)
		err := trySend(srv.addr("smtp"), "bob@plain.test", []string{"user@" + homeDomain}, string(msg))
		if tt.want == "" && err != nil || tt.want != "" && replyOf(err) != tt.want {
			t.Errorf("%s: sending = %s, want %q", tt.name, replyOf(err), tt.want)
		}
		srv.waitQueueEmpty(t)
	}
	got := env.home.WaitDelivered(t, 1, e2eTimeout)
	if len(got) != 1 || got[0].Header.Get("Subject") != "not listed" {
		t.Errorf("home mailbox: %d messages, first %q; want only the one from the client no list names", len(got), got[0].Header.Get("Subject"))
	}
}

// TestE2E_InboundGreylisting is issue 5's greylisting with a 1s
// greylist_delay: the first attempt of a (client, sender, recipient)
// triplet gets 450 4.2.0, retries within the delay too; the sender's MTA
// retrying every 100ms gets through once the delay has passed, not
// before, and the message reaches the home server. Another sender is a
// new triplet and is deferred again; the passed triplet is remembered
// across a restart of smarthost.
func TestE2E_InboundGreylisting(t *testing.T) {
	t.Parallel()
	env := startInboundEnv(t)
	const delay = time.Second
	c := env.mxConfig(t)
	c.Inbound = &e2eInbound{Greylisting: true, GreylistDelay: delay.String()}
	srv := startRelay(t, c, nil)
	rcpt := []string{"user@" + homeDomain}
	msg := string(inboundMessage("bob@plain.test", "greylisted@outside.test", "greylisted"))

	const greylisted = "450 4.2.0 Greylisted; please try again later"
	first := time.Now()
	if err := trySend(srv.addr("smtp"), "bob@plain.test", rcpt, msg); replyOf(err) != greylisted {
		t.Fatalf("first attempt: %s, want %q", replyOf(err), greylisted)
	}
	// Retry as an MTA would, only much faster, until accepted. An
	// attempt that ended before the delay had passed since the first
	// began must have been refused; the accepted one cannot have come
	// before the delay.
	var refusedEarly int
	deadline := time.Now().Add(e2eTimeout)
	for {
		start := time.Now()
		err := trySend(srv.addr("smtp"), "bob@plain.test", rcpt, msg)
		end := time.Now()
		if err == nil {
			if end.Sub(first) < delay {
				t.Errorf("accepted %v after the first attempt, before greylist_delay %v", end.Sub(first), delay)
			}
			break
		}
		if replyOf(err) != greylisted {
			t.Fatalf("retry: %s, want %q", replyOf(err), greylisted)
		}
		if end.Sub(first) < delay {
			refusedEarly++
		}
		if start.After(deadline) {
			t.Fatalf("still greylisted %v after the first attempt", time.Since(first))
		}
		time.Sleep(100 * time.Millisecond) // the sender's retry interval, not a synchronisation
	}
	if refusedEarly == 0 {
		t.Error("no retry happened within the delay, so nothing shows that an early retry is refused")
	}
	if got := env.home.WaitDelivered(t, 1, e2eTimeout); got[0].Header.Get("Message-ID") != "<greylisted@outside.test>" {
		t.Errorf("home mailbox: %s, want the greylisted message", got[0].Header.Get("Message-ID"))
	}
	other := string(inboundMessage("carol@plain.test", "other@outside.test", "other sender"))
	if err := trySend(srv.addr("smtp"), "carol@plain.test", rcpt, other); replyOf(err) != greylisted {
		t.Errorf("another sender, same client and recipient: %s, want %q", replyOf(err), greylisted)
	}

	srv.Stop()
	srv = startRelay(t, c, nil)
	again := string(inboundMessage("bob@plain.test", "after-restart@outside.test", "after restart"))
	if err := trySend(srv.addr("smtp"), "bob@plain.test", rcpt, again); err != nil {
		t.Errorf("the passed triplet after a restart: %s, want accepted", replyOf(err))
	}
	env.home.WaitDelivered(t, 2, e2eTimeout)
	srv.waitQueueEmpty(t)
}

// TestE2E_InboundHomeServerDown is issue 5's "the home-server-down path
// loses nothing": with the home Postfix stopped, smarthost still accepts
// mail for the home domain with 250 and `smarthost queue list` shows it
// deferred with the reason; after Postfix starts again,
// `smarthost queue flush -domain home.test` delivers every message once,
// at once (retry is one hour), and leaves mail for another relay domain,
// whose next hop is still down, alone.
func TestE2E_InboundHomeServerDown(t *testing.T) {
	t.Parallel()
	env := startInboundEnv(t)
	c := env.mxConfig(t)
	c.RelayDomains = append(c.RelayDomains, "other.test")
	c.Transport["other.test"] = nextHop(refusingAddr(t))
	srv := startRelay(t, c, nil)
	env.home.Stop(t)

	var ids []string
	for i := range 3 {
		msg := inboundMessage("bob@plain.test", fmt.Sprintf("down-%d@outside.test", i), fmt.Sprintf("while down %d", i))
		ids = append(ids, submit(t, srv.addr("smtp"), "bob@plain.test", []string{"user@" + homeDomain}, string(msg)))
	}
	other := submit(t, srv.addr("smtp"), "bob@plain.test", []string{"user@other.test"},
		string(inboundMessage("bob@plain.test", "other@outside.test", "other relay domain")))
	srv.waitQueue(t, "every message deferred once", attemptsDone(1, append([]string{other}, ids...)...))

	listed := append(slices.Clone(ids), other, "user@"+homeDomain+"  [deferred, 1 attempts]", "connection refused", "in 4 Requests.")
	runQueueSteps(t, srv.Config, []queueStep{
		{"list shows the mail deferred", []string{"list"}, 0, listed, nil, ""},
	})

	env.home.Start(t)
	code, out, errOut := smarthostCmd("queue", "flush", "-domain", homeDomain, "-config", srv.Config)
	if want := "flushed: 3 message(s) for " + homeDomain + "\n"; code != 0 || out != want {
		t.Fatalf("smarthost queue flush -domain %s = exit %d, %q, %q; want exit 0, %q", homeDomain, code, out, errOut, want)
	}
	got := byMessageID(t, env.home.WaitDelivered(t, 3, e2eTimeout))
	for i := range 3 {
		d, ok := got[fmt.Sprintf("<down-%d@outside.test>", i)]
		if !ok {
			t.Errorf("message %d sent while the home server was down was not delivered", i)
			continue
		}
		if d.Header.Get("Authentication-Results") == "" {
			t.Errorf("message %d arrived without Authentication-Results", i)
		}
	}
	left := srv.waitQueue(t, "only the other domain's message left", func(l []queue.Summary) bool {
		return len(l) == 1 && string(l[0].ID) == other && !l[0].Active
	})
	if left[0].Attempts != 1 {
		t.Errorf("the other domain's message has %d attempts, want 1: flush -domain %s retried it", left[0].Attempts, homeDomain)
	}
	if n := len(env.home.Mailbox(t)); n != 3 {
		t.Errorf("home mailbox holds %d messages, want 3", n)
	}
}
