package smtpd

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smarthost/config"
	"smarthost/queue"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const simpleMessage = "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"

func TestSubmission_EHLOAdvertisesExtensionsAndAuthOnlyOverTLS(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSStartTLS})
	d := e.dial()
	before := d.hello()
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "STARTTLS", "SIZE 52428800"} {
		if !strings.Contains(before, ext) {
			t.Errorf("EHLO before TLS lacks %s:\n%s", ext, before)
		}
	}
	if strings.Contains(before, "AUTH") {
		t.Errorf("EHLO before TLS advertises AUTH:\n%s", before)
	}
	d.expect("AUTH PLAIN "+plain("alice", "secret"), "538 5.7.11 ")
	if e.auth.checks != 0 {
		t.Errorf("a password sent before TLS was checked")
	}
	d.expect("STARTTLS", "220 ")
	d.startTLS(e.clientTLS())
	after := d.expect("EHLO client.example.net", "250-")
	if !strings.Contains(after, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO after TLS lacks AUTH PLAIN LOGIN:\n%s", after)
	}
	if strings.Contains(after, "STARTTLS") {
		t.Errorf("EHLO after TLS still offers STARTTLS:\n%s", after)
	}
}

func TestMX_OffersNoAuth(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, tls: config.TLSImplicit})
	d := e.dialTLS()
	ehlo := d.hello()
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("mx EHLO advertises AUTH:\n%s", ehlo)
	}
	d.expect("AUTH PLAIN "+plain("alice", "secret"), "503 5.5.1")
}

func TestSubmission_RejectsMailWithoutAuth(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSImplicit})
	d := e.dialTLS()
	d.hello()
	d.expect("MAIL FROM:<alice@example.com>", "530 5.7.0 ")
	d.expect("RCPT TO:<bob@example.net>", "502 5.5.1") // go-smtp: no MAIL yet
	if got := len(e.spool.messages()); got != 0 {
		t.Errorf("%d messages queued, want 0", got)
	}
}

func TestSubmission_TrustedNetworkRelaysWithoutAuth(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSStartTLS, trusted: []string{"127.0.0.0/8"}})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<alice@example.com>", "250 ")
	d.expect("RCPT TO:<bob@example.net>", "250 ")
	d.expect("DATA", "354 ")
	d.send(simpleMessage + ".\r\n")
	d.expect("", "250 2.0.0 Ok: queued as TESTID")
	msgs := e.spool.messages()
	if len(msgs) != 1 || !strings.HasPrefix(string(msgs[0].Header), "DKIM-Signature:") {
		t.Fatalf("queued %d messages; want 1 that is signed; header %q", len(msgs), headerOf(msgs))
	}
}

func headerOf(msgs []memMessage) string {
	if len(msgs) == 0 {
		return ""
	}
	return string(msgs[0].Header)
}

// TestSubmission_AuthWithRealClient uses go-smtp's client for PLAIN and
// LOGIN over implicit TLS, as a phone or laptop would.
func TestSubmission_AuthWithRealClient(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSImplicit})
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		c, err := smtp.DialTLS(e.addr, e.clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		var client sasl.Client
		if mech == "PLAIN" {
			client = sasl.NewPlainClient("", "alice", "secret")
		} else {
			client = sasl.NewLoginClient("alice", "secret")
		}
		if err := c.Auth(client); err != nil {
			t.Fatalf("AUTH %s: %v", mech, err)
		}
		if err := c.SendMail("alice@example.com", []string{"bob@example.net"}, strings.NewReader(simpleMessage)); err != nil {
			t.Fatalf("send after AUTH %s: %v", mech, err)
		}
		c.Quit()
	}
	msgs := e.spool.messages()
	if len(msgs) != 2 {
		t.Fatalf("queued %d messages, want 2", len(msgs))
	}
	rec := string(msgs[0].Header)
	for _, want := range []string{"(Authenticated sender: alice)", "with ESMTPSA id " + msgs[0].ID, "(using TLSv1.3 with cipher TLS_", "for <bob@example.net>"} {
		if !strings.Contains(rec, want) {
			t.Errorf("prepended header lacks %q:\n%s", want, rec)
		}
	}
	if msgs[0].Env.Origin.User != "alice" || msgs[0].Env.Origin.TLS == "" {
		t.Errorf("origin = %+v, want user alice over TLS", msgs[0].Env.Origin)
	}
}

func TestSubmission_WrongPasswordIsLoggedForFail2banAndBans(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSImplicit})
	d := e.dialTLS()
	d.hello()
	for i := 0; i < 3; i++ {
		if got := d.login("alice", "wrong"); !strings.HasPrefix(got, "535 5.7.8 ") {
			t.Fatalf("attempt %d: %q, want 535 5.7.8", i+1, got)
		}
	}
	checks := e.auth.checks
	if got := d.login("alice", "secret"); !strings.HasPrefix(got, "454 4.7.0 ") {
		t.Errorf("login while banned: %q, want 454 4.7.0", got)
	}
	if e.auth.checks != checks {
		t.Errorf("a banned client's password was checked")
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "msg=auth_failed"); n != 4 {
		t.Errorf("%d auth_failed lines, want 4:\n%s", n, logs)
	}
	if !strings.Contains(logs, "msg=auth_failed queue_id=NOQUEUE client_ip=127.0.0.1 ") {
		t.Errorf("auth_failed line not in the fail2ban format:\n%s", logs)
	}
	if !strings.Contains(logs, "msg=auth_banned") {
		t.Errorf("no auth_banned line:\n%s", logs)
	}
	if strings.Contains(logs, "wrong") || strings.Contains(logs, "secret") {
		t.Errorf("a password reached the log:\n%s", logs)
	}
	// A new connection from the banned IP is refused before TLS.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("banned client's connection stayed open (read %d bytes)", n)
	}
}

// TestRelayBattery checks every address trick against both roles. On mx
// nothing outside relay domains (and transport-map addresses) is accepted;
// on submission an unauthenticated, untrusted client cannot even start.
func TestRelayBattery(t *testing.T) {
	t.Parallel()
	tricks := []struct {
		rcpt   string
		mxWant string // reply prefix to RCPT on mx
	}{
		{"<user@example.com>", "250 "},
		{"<USER@EXAMPLE.COM>", "250 "},
		{"<special@example.net>", "250 "}, // transport-map address
		{"<other@example.net>", "554 5.7.1 Relay access denied"},
		{"<user@evil.example>", "554 5.7.1 Relay access denied"},
		{"<user%evil.example@example.com>", "554 5.7.1 Relay access denied"},
		{"<evil.example!user@example.com>", "554 5.7.1 Relay access denied"},
		{`<"user@evil.example"@example.com>`, "554 5.7.1 Relay access denied"},
		{"<@example.com:user@evil.example>", "554 5.7.1 Relay access denied"},
		{"<@example.com,@example.com:user@evil.example>", "554 5.7.1 Relay access denied"},
		{"<user@[192.0.2.1]>", "554 5.7.1 Relay access denied"},
		{"<user@[IPv6:2001:db8::1]>", "554 5.7.1 Relay access denied"},
		{"<user@example.com.>", "501 5.1.3 "},
		{"<user@sub.example.com>", "554 5.7.1 Relay access denied"},
		{"<user@example.com.evil.example>", "554 5.7.1 Relay access denied"},
		{"<user@evil.example@example.com>", "554 5.7.1 Relay access denied"},
		{"<user>", "501 5.5.2"},
		{"<>", "501 5.5.2"},
	}
	mx := startServer(t, envOptions{role: config.RoleMX, tls: config.TLSNone})
	sub := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSNone})
	for _, tt := range tricks {
		t.Run("mx "+tt.rcpt, func(t *testing.T) {
			d := mx.dial()
			d.hello()
			d.expect("MAIL FROM:<sender@outside.example>", "250 ")
			d.expect("RCPT TO:"+tt.rcpt, tt.mxWant)
		})
		t.Run("submission "+tt.rcpt, func(t *testing.T) {
			d := sub.dial()
			d.hello()
			d.expect("MAIL FROM:<sender@outside.example>", "530 5.7.0 ")
			d.expect("RCPT TO:"+tt.rcpt, "5")
		})
	}
	if n := len(mx.spool.messages()) + len(sub.spool.messages()); n != 0 {
		t.Errorf("%d messages queued by the battery, want 0", n)
	}
}

// TestSubmission_AuthenticatedTricksStillRefused: even a logged-in user
// cannot use routing tricks or address literals.
func TestSubmission_AuthenticatedTricksStillRefused(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSImplicit})
	d := e.dialTLS()
	d.hello()
	d.expect("AUTH PLAIN "+plain("alice", "secret"), "235 ")
	d.expect("MAIL FROM:<alice@example.com>", "250 ")
	d.expect("RCPT TO:<anyone@far.example>", "250 ")
	for _, rcpt := range []string{"<a%b@far.example>", "<b!a@far.example>", "<a@[192.0.2.1]>", `<"a@b"@far.example>`} {
		d.expect("RCPT TO:"+rcpt, "554 5.7.1 ")
	}
}

func TestSubmission_SenderPermissions(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSImplicit,
		senders: senderMap{"alice": {"alice@example.com"}}})
	d := e.dialTLS()
	d.hello()
	d.expect("AUTH PLAIN "+plain("alice", "secret"), "235 ")
	d.expect("MAIL FROM:<boss@example.com>", "553 5.7.1 Sender address not owned by user")
	d.expect("MAIL FROM:<alice@example.com>", "250 ")
	d.expect("RCPT TO:<bob@example.net>", "250 ")
	d.expect("DATA", "354 ")
	d.send("From: boss@example.com\r\n\r\nPay this invoice.\r\n.\r\n")
	d.expect("", "553 5.7.1 From: address not owned by user")
	d.expect("MAIL FROM:<>", "250 ") // the null sender is not an address anyone owns
	if n := len(e.spool.messages()); n != 0 {
		t.Errorf("%d messages queued, want 0", n)
	}
}

func TestSubmission_FromHeaderMustBeExactlyOne(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSNone, trusted: []string{"127.0.0.1/32"}})
	tests := []struct {
		name, message, want string
	}{
		{"none", "Subject: x\r\n\r\nbody\r\n", "550 5.7.1 "},
		{"two", "From: a@example.com\r\nFrom: b@example.com\r\n\r\nbody\r\n", "550 5.7.1 "},
		{"one", "From: a@example.com\r\n\r\nbody\r\n", "250 2.0.0 "},
	}
	for _, tt := range tests {
		d := e.dial()
		d.hello()
		d.expect("MAIL FROM:<a@example.com>", "250 ")
		d.expect("RCPT TO:<b@example.net>", "250 ")
		d.expect("DATA", "354 ")
		d.send(tt.message + ".\r\n")
		d.expect("", tt.want)
	}
}

func TestMX_DoesNotSignOrCheckFrom(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, tls: config.TLSNone})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<sender@outside.example>", "250 ")
	d.expect("RCPT TO:<user@example.com>", "250 ")
	d.expect("DATA", "354 ")
	d.send("From: forged@example.com\r\n\r\nhello\r\n.\r\n")
	d.expect("", "250 2.0.0 Ok: queued as ")
	msgs := e.spool.messages()
	if len(msgs) != 1 || strings.Contains(string(msgs[0].Header), "DKIM-Signature") {
		t.Fatalf("mx message header %q; want one message, unsigned", headerOf(msgs))
	}
	if !strings.Contains(string(msgs[0].Header), "with ESMTP id ") {
		t.Errorf("Received line lacks plain ESMTP: %q", msgs[0].Header)
	}
}

// TestData_SmugglingNeverEndsData sends the end-of-data look-alikes used in
// SMTP smuggling followed by a complete second transaction. Exactly one
// message must be queued, holding the smuggled lines as content, and the
// client must get exactly one reply for the DATA.
func TestData_SmugglingNeverEndsData(t *testing.T) {
	t.Parallel()
	fakeEnds := map[string]string{
		"LF.CRLF":   "\n.\r\n",
		"CRLF.LF":   "\r\n.\n",
		"LF.LF":     "\n.\n",
		"CR.CRLF":   "\r.\r\n",
		"CRLF.CR":   "\r\n.\r",
		"CRLF.NUL":  "\r\n.\x00\r\n",
		"CRLF..LF":  "\r\n..\n",
		"CRLF.CRCR": "\r\n.\r\r\n",
	}
	for name, end := range fakeEnds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startServer(t, envOptions{role: config.RoleMX, tls: config.TLSNone})
			d := e.dial()
			d.hello()
			d.send("MAIL FROM:<a@outside.example>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n")
			d.expect("", "250 ")
			d.expect("", "250 ")
			d.expect("", "354 ")
			d.send("From: a@outside.example\r\n\r\nfirst" + end +
				"MAIL FROM:<evil@outside.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n")
			first := d.reply()
			d.expect("NOOP", "250 ") // proves no pipelined replies were left behind
			msgs := e.spool.messages()
			switch {
			case strings.HasPrefix(first, "250 "):
				if len(msgs) != 1 {
					t.Fatalf("%d messages queued, want 1", len(msgs))
				}
				if !strings.Contains(string(msgs[0].Data), "MAIL FROM:<evil@outside.example>") {
					t.Errorf("smuggled commands are not message content:\n%q", msgs[0].Data)
				}
				if len(msgs[0].Env.Recipients) != 1 || msgs[0].Env.Recipients[0] != "user@example.com" {
					t.Errorf("recipients = %v, want only user@example.com", msgs[0].Env.Recipients)
				}
			case strings.HasPrefix(first, "550 "):
				if len(msgs) != 0 {
					t.Fatalf("%d messages queued after a refusal", len(msgs))
				}
			default:
				t.Fatalf("reply to DATA = %q, want 250 or 550", first)
			}
			if strings.ContainsAny(strings.ReplaceAll(string(dataOf(msgs)), "\r\n", ""), "\r\n") {
				t.Errorf("queued data has a bare CR or LF: %q", dataOf(msgs))
			}
		})
	}
}

func dataOf(msgs []memMessage) []byte {
	if len(msgs) == 0 {
		return nil
	}
	return msgs[0].Data
}

func TestData_LineEndings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want, stored string
	}{
		{"bare LF normalized", "From: a@outside.example\n\nline1\nline2\r\n", "250 ", "From: a@outside.example\r\n\r\nline1\r\nline2\r\n"},
		{"CRLF kept", "From: a@outside.example\r\n\r\nline\r\n", "250 ", "From: a@outside.example\r\n\r\nline\r\n"},
		{"bare CR refused", "From: a@outside.example\r\n\r\nline\rmore\r\n", "550 5.5.2 ", ""},
		{"NUL refused", "From: a@outside.example\r\n\r\nnul\x00here\r\n", "550 5.6.0 ", ""},
		{"dot-stuffing removed", "From: a@outside.example\r\n\r\n..leading dot\r\n", "250 ", "From: a@outside.example\r\n\r\n.leading dot\r\n"},
		{"8-bit kept", "From: a@outside.example\r\n\r\nGrüße\r\n", "250 ", "From: a@outside.example\r\n\r\nGrüße\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := startServer(t, envOptions{role: config.RoleMX})
			d := e.dial()
			d.hello()
			d.expect("MAIL FROM:<a@outside.example>", "250 ")
			d.expect("RCPT TO:<user@example.com>", "250 ")
			d.expect("DATA", "354 ")
			d.send(tt.body + ".\r\n")
			d.expect("", tt.want)
			d.expect("NOOP", "250 ")
			msgs := e.spool.messages()
			if tt.stored == "" {
				if len(msgs) != 0 {
					t.Errorf("refused message was queued")
				}
				return
			}
			if len(msgs) != 1 || string(msgs[0].Data) != tt.stored {
				t.Errorf("stored %q, want %q", dataOf(msgs), tt.stored)
			}
		})
	}
}

func TestData_LongLines(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, limits: func(l *config.Limits) { l.MaxLineLength.Bytes = 8192 }})
	send := func(line string) (*dialogue, string) {
		d := e.dial()
		d.hello()
		d.expect("MAIL FROM:<a@outside.example>", "250 ")
		d.expect("RCPT TO:<user@example.com>", "250 ")
		d.expect("DATA", "354 ")
		d.send("From: a@outside.example\r\n\r\n" + line + "\r\n.\r\n")
		return d, d.reply()
	}
	// Real mail has lines over RFC 5322's 998 octets; they must not bounce.
	if _, got := send(strings.Repeat("x", 5000)); !strings.HasPrefix(got, "250 ") {
		t.Errorf("5000-octet line: %q, want 250", got)
	}
	if _, got := send(strings.Repeat("x", 9000)); !strings.HasPrefix(got, "500 5.5.2 ") {
		t.Errorf("9000-octet line over an 8 KiB limit: %q, want 500 5.5.2", got)
	}
	msgs := e.spool.messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), strings.Repeat("x", 5000)+"\r\n") {
		t.Errorf("the long line was not stored unchanged")
	}
}

func TestData_SizeLimits(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, limits: func(l *config.Limits) {
		l.MaxMessageSize.Bytes = 10000
		l.MaxHeaderSize.Bytes = 2000
	}})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<a@outside.example> SIZE=20000", "552 5.3.4 ")
	d.expect("MAIL FROM:<a@outside.example> SIZE=500", "250 ")
	d.expect("RCPT TO:<user@example.com>", "250 ")
	d.expect("DATA", "354 ")
	d.send("From: a@outside.example\r\n\r\n" + strings.Repeat("0123456789\r\n", 1500) + ".\r\n")
	d.expect("", "552 5.3.4 ")
	d.expect("MAIL FROM:<a@outside.example>", "250 ")
	d.expect("RCPT TO:<user@example.com>", "250 ")
	d.expect("DATA", "354 ")
	d.send(strings.Repeat("X-Filler: 0123456789\r\n", 200) + "\r\nbody\r\n.\r\n")
	d.expect("", "552 5.3.4 ")
	d.expect("NOOP", "250 ")
	if n := len(e.spool.messages()); n != 0 {
		t.Errorf("%d oversized messages queued", n)
	}
}

func TestRcpt_TooManyRecipients(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, limits: func(l *config.Limits) { l.MaxRecipients = 2 }})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<a@outside.example>", "250 ")
	d.expect("RCPT TO:<u1@example.com>", "250 ")
	d.expect("RCPT TO:<u2@example.com>", "250 ")
	d.expect("RCPT TO:<u3@example.com>", "452 4.5.3 ")
}

func TestSession_BadInput(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX})
	tests := []struct {
		cmd, want string
	}{
		{"RCPT TO:<user@example.com>", "502 5.5.1 "},
		{"DATA", "502 5.5.1 "},
		{"MAIL FROM:<a@" + strings.Repeat("b", 300) + ".example>", "501 5.5.4 "},
		{"MAIL FROM:<" + strings.Repeat("a", 70) + "@outside.example>", "501 5.5.4 "},
		{"MAIL FROM:<a\x00b@outside.example>", "501 5.1.7 "},
		{"MAIL FROM:<not an address>", "501 5.5.2 "},
		{"MAIL FROM:<ü@outside.example>", "553 5.6.7 "},
		{"FOOBAR", "501 5.5.2 "},
		{"XYZW arg", "500 5.5.2 "},
		{"VRFY user@example.com", "252 "},
	}
	d := e.dial()
	d.hello()
	for _, tt := range tests {
		d.expect(tt.cmd, tt.want)
		if strings.HasPrefix(tt.want, "500") {
			d = e.dial() // go-smtp closes after repeated syntax errors
			d.hello()
		}
	}
	d.expect("MAIL FROM:<ü@outside.example> SMTPUTF8", "250 ")
	d.expect("RCPT TO:<ü@example.com>", "250 ")
}

func TestSession_StalledClientTimesOut(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, limits: func(l *config.Limits) { l.Timeout.Duration = 300 * time.Millisecond }})
	d := e.dial()
	d.hello()
	d.expect("MAIL FROM:<a@outside.example>", "250 ")
	d.expect("RCPT TO:<user@example.com>", "250 ")
	d.expect("DATA", "354 ")
	d.send("From: a@outside.example\r\n\r\npartial")
	// Then nothing: the server must give up with a 4xx and hang up.
	got := d.reply()
	if !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Errorf("stalled client got %q, want 421 4.4.2", got)
	}
	if n := len(e.spool.messages()); n != 0 {
		t.Errorf("a partial message was queued")
	}
}

func TestSpool_FailureRepliesTemporaryNever250(t *testing.T) {
	t.Parallel()
	for _, failAt := range []string{"write", "commit"} {
		e := startServer(t, envOptions{role: config.RoleMX})
		diskFull := fmt.Errorf("write /spool/x: no space left on device: %w", queue.ErrStorage)
		if failAt == "write" {
			e.spool.failWrite = diskFull
		} else {
			e.spool.failComm = diskFull
		}
		d := e.dial()
		d.hello()
		d.expect("MAIL FROM:<a@outside.example>", "250 ")
		d.expect("RCPT TO:<user@example.com>", "250 ")
		d.expect("DATA", "354 ")
		d.send(simpleMessage + ".\r\n")
		got := d.expect("", "452 4.3.1 Insufficient system storage")
		if strings.Contains(got, "/spool") {
			t.Errorf("reply leaks a path: %q", got)
		}
		if e.spool.aborted != 1 {
			t.Errorf("fail at %s: %d drafts aborted, want 1", failAt, e.spool.aborted)
		}
	}
}

func TestGate_ConnectionLimitPerIP(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX, limits: func(l *config.Limits) { l.MaxConnectionsPerIP = 1 }})
	first := e.dial()
	first.expect("", "220 ")
	second := e.dial()
	second.expect("", "421 4.7.0 ")
	first.expect("QUIT", "221 ")
	first.conn.Close()
	// The slot is given back when the first connection ends; the server
	// notices the close asynchronously, so poll for the slot.
	deadline := time.Now().Add(5 * time.Second)
	for {
		third := e.dial()
		got := third.reply()
		if strings.HasPrefix(got, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never released: %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBDAT_NormalizedLikeData(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX})
	d := e.dial()
	ehlo := d.hello()
	if !strings.Contains(ehlo, "CHUNKING") {
		t.Skip("go-smtp no longer offers CHUNKING")
	}
	body := "From: a@outside.example\n\nbare lf\n"
	d.expect("MAIL FROM:<a@outside.example>", "250 ")
	d.expect("RCPT TO:<user@example.com>", "250 ")
	d.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
	d.expect("", "250 2.0.0 Ok: queued as ")
	msgs := e.spool.messages()
	if len(msgs) != 1 || string(msgs[0].Data) != "From: a@outside.example\r\n\r\nbare lf\r\n" {
		t.Errorf("BDAT stored %q", dataOf(msgs))
	}
}

func TestNew_RejectsIncompleteOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Listener{Name: "x", Role: config.RoleMX, TLS: config.TLSNone}, nil, Options{Spool: &memSpool{}})
	if err == nil || !strings.Contains(err.Error(), "relay destinations") {
		t.Errorf("New(mx without destinations) error = %v", err)
	}
	_, err = New(Listener{Name: "x", Role: config.RoleSubmission, TLS: config.TLSImplicit}, nil, Options{Spool: &memSpool{}})
	if err == nil {
		t.Errorf("New(implicit TLS without config) succeeded")
	}
	var ne interface{ Error() string }
	if errors.As(err, &ne) && strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}

// TestSubmission_QueuedMessageVerifies checks the whole DATA path: what the
// queue holds (prepended header + data) carries a DKIM signature that
// go-msgauth verifies against the key's DNS record.
func TestSubmission_QueuedMessageVerifies(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleSubmission, tls: config.TLSImplicit})
	c, err := smtp.DialTLS(e.addr, e.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatal(err)
	}
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: signed\r\n" +
		"Message-ID: <1@example.com>\r\n\r\nbare\nLF and Grüße\r\n" + strings.Repeat("y", 3000) + "\r\n"
	if err := c.SendMail("alice@example.com", []string{"bob@example.net"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	msgs := e.spool.messages()
	if len(msgs) != 1 {
		t.Fatalf("queued %d messages, want 1", len(msgs))
	}
	full := append(append([]byte(nil), msgs[0].Header...), msgs[0].Data...)
	verifications, err := msgauth.VerifyWithOptions(bytes.NewReader(full), &msgauth.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "test._domainkey.example.com" {
				return nil, fmt.Errorf("unexpected lookup %q", domain)
			}
			return []string{e.record.String()}, nil
		},
	})
	if err != nil || len(verifications) != 1 || verifications[0].Err != nil || verifications[0].Domain != "example.com" {
		t.Fatalf("verification = %+v (%v), %v; want one valid signature by example.com\n%s", verifications, verifyErr(verifications), err, full)
	}
	if !strings.Contains(msgs[0].Env.Origin.TLS, "TLSv1.3") || !strings.Contains(e.logs.String(), "dkim_domain=example.com") {
		t.Errorf("received event or origin lacks TLS/DKIM details:\n%s", e.logs.String())
	}
}

func verifyErr(v []*msgauth.Verification) error {
	if len(v) == 0 {
		return nil
	}
	return v[0].Err
}

// TestSession_InvalidHeloRefused: a HELO/EHLO argument that could break
// our Received header (control characters, over 255 octets) is refused,
// including on a repeated EHLO, which go-smtp answers without asking the
// session: then MAIL is refused and nothing is queued.
func TestSession_InvalidHeloRefused(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX})
	long := strings.Repeat("h", 300) + ".example"

	d := e.dial()
	d.expect("", "220 ")
	d.expect("EHLO "+long, "501 5.5.2 ")

	for _, bad := range []string{long, "bad\x01name.example"} {
		d := e.dial()
		d.hello()
		d.expect("EHLO "+bad, "250")
		d.expect("MAIL FROM:<a@outside.example>", "501 5.5.2 ")
		d.expect("EHLO client.example.net", "250")
		d.expect("MAIL FROM:<a@outside.example>", "250 ")
	}
	if n := len(e.spool.messages()); n != 0 {
		t.Errorf("%d messages queued, want 0", n)
	}
}

// TestData_RefusesMailLoops: a message that has passed through too many
// hops (Postfix's hopcount_limit, 50) is refused instead of looping on.
func TestData_RefusesMailLoops(t *testing.T) {
	t.Parallel()
	e := startServer(t, envOptions{role: config.RoleMX})
	for _, tt := range []struct {
		hops int
		want string
	}{{maxHops - 1, "250 2.0.0 "}, {maxHops, "554 5.4.6 "}} {
		d := e.dial()
		d.hello()
		d.expect("MAIL FROM:<a@outside.example>", "250 ")
		d.expect("RCPT TO:<user@example.com>", "250 ")
		d.expect("DATA", "354 ")
		trace := strings.Repeat("Received: from a by b; Sat, 21 Nov 2026 10:00:00 +0000\r\n", tt.hops)
		d.send(trace + "From: a@outside.example\r\n\r\nhi\r\n.\r\n")
		d.expect("", tt.want)
	}
	if n := len(e.spool.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}
