package main

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"smarthost/relay/interop"
	"smarthost/relay/sink"
)

// submissionConfig is the front door of DESIGN.md: "submissions" with
// implicit TLS (465) and "submission" with STARTTLS (587), both role
// submission, user alice, and every recipient routed to one next hop.
// trusted_networks does not contain 127.0.0.1, so the test client is an
// untrusted client from the Internet and must authenticate.
func submissionConfig(t *testing.T, nextHopAddr string) e2eConfig {
	return e2eConfig{
		Dir:     t.TempDir(),
		Trusted: []string{"192.0.2.0/24"},
		Listeners: []e2eListener{
			{Name: "submissions", TLS: "implicit", Role: "submission"},
			{Name: "submission", TLS: "starttls", Role: "submission"},
		},
		Users:     map[string]string{"alice": "correct horse battery staple"},
		Transport: map[string]string{"*": nextHop(nextHopAddr)},
	}
}

// TestE2E_SwaksSubmission is issue 2's "swaks authenticates with both
// mechanisms": swaks, a real client, authenticates with AUTH PLAIN and AUTH
// LOGIN over implicit TLS and over STARTTLS and its messages reach the next
// hop; a wrong password gets 535 5.7.8, a client outside trusted_networks
// that does not authenticate gets 530 5.7.0, and swaks finds no AUTH to use
// before STARTTLS. Only the four authenticated messages are delivered.
func TestE2E_SwaksSubmission(t *testing.T) {
	t.Parallel()
	interop.Require(t, "swaks")
	next, nextAddr := startSink(t, sink.Options{})
	srv := startRelay(t, submissionConfig(t, nextAddr), nil)

	implicit := []string{"--server", "127.0.0.1", "--port", port(srv.addr("submissions")), "--tls-on-connect"}
	starttls := []string{"--server", "127.0.0.1", "--port", port(srv.addr("submission")), "--tls"}
	plaintext := []string{"--server", "127.0.0.1", "--port", port(srv.addr("submission"))}
	login := func(mech, password string) []string {
		return []string{"--auth", mech, "--auth-user", "alice", "--auth-password", password}
	}
	good, bad := "correct horse battery staple", "Tr0ub4dor&3"

	tests := []struct {
		name string
		args [][]string
		// wantExit is swaks' exit status (swaks(1), EXIT CODES): 0 sent,
		// 23 refused at MAIL, 28 AUTH failed.
		wantExit    int
		wantReplies []string // reply lines (prefixes) swaks must have seen
		notReplies  []string // reply lines (prefixes) it must not have seen
		swaksSays   string   // a line of swaks' own in the transcript
		wantSent    bool
	}{
		{"PLAIN over implicit TLS", [][]string{implicit, login("PLAIN", good)}, 0,
			[]string{"235 ", "250 2.0.0 Ok: queued as "}, nil, "", true},
		{"LOGIN over implicit TLS", [][]string{implicit, login("LOGIN", good)}, 0,
			[]string{"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 ", "250 2.0.0 Ok: queued as "}, nil, "", true},
		{"PLAIN over STARTTLS", [][]string{starttls, login("PLAIN", good)}, 0,
			[]string{"220 2.0.0", "235 ", "250 2.0.0 Ok: queued as "}, nil, "", true},
		{"LOGIN over STARTTLS", [][]string{starttls, login("LOGIN", good)}, 0,
			[]string{"220 2.0.0", "235 ", "250 2.0.0 Ok: queued as "}, nil, "", true},
		{"wrong password, PLAIN over implicit TLS", [][]string{implicit, login("PLAIN", bad)}, 28,
			[]string{"535 5.7.8"}, []string{"235", "250 2.0.0 Ok"}, "", false},
		{"wrong password, LOGIN over STARTTLS", [][]string{starttls, login("LOGIN", bad)}, 28,
			[]string{"535 5.7.8"}, []string{"235", "250 2.0.0 Ok"}, "", false},
		{"no AUTH from an untrusted client, implicit TLS", [][]string{implicit}, 23,
			[]string{"530 5.7.0"}, []string{"250 2.0.0 Ok"}, "", false},
		{"no AUTH from an untrusted client, STARTTLS", [][]string{starttls}, 23,
			[]string{"530 5.7.0"}, []string{"250 2.0.0 Ok"}, "", false},
		// Before STARTTLS the EHLO reply offers no AUTH, so swaks (like
		// every well-behaved client) gives up without sending the
		// password; TestE2E_AUTHBeforeSTARTTLSRefused sends it anyway.
		{"AUTH on the plaintext side of the STARTTLS listener", [][]string{plaintext, login("PLAIN", good)}, 28,
			nil, []string{"250-AUTH", "235", "250 2.0.0 Ok"}, "*** Host did not advertise authentication", false},
	}
	t.Run("swaks", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				args := []string{"--from", "alice@sender.e2e.test", "--to", "bob@rcpt.e2e.test",
					"--header", "Subject: " + tt.name}
				for _, a := range tt.args {
					args = append(args, a...)
				}
				res := runSwaks(t, args...)
				if res.Exit != tt.wantExit {
					t.Errorf("swaks exit status = %d, want %d\n%s", res.Exit, tt.wantExit, res.Transcript)
				}
				for _, w := range tt.wantReplies {
					if !res.HasReply(w) {
						t.Errorf("swaks saw no reply %q; replies:\n%s", w, strings.Join(res.Replies(), "\n"))
					}
				}
				if !strings.Contains(res.Transcript, tt.swaksSays) {
					t.Errorf("swaks did not say %q:\n%s", tt.swaksSays, res.Transcript)
				}
				for _, w := range tt.notReplies {
					if res.HasReply(w) {
						t.Errorf("swaks saw reply %q, want none; replies:\n%s", w, strings.Join(res.Replies(), "\n"))
					}
				}
			})
		}
	})

	var want []string
	for _, tt := range tests {
		if tt.wantSent {
			want = append(want, tt.name)
		}
	}
	waitMessages(t, next, len(want))
	srv.waitQueueEmpty(t)
	got := next.Messages()
	if len(got) != len(want) {
		t.Errorf("next hop received %d messages, want %d (only the authenticated ones)", len(got), len(want))
	}
	bySubject := make(map[string]sink.Message)
	for _, m := range got {
		bySubject[headerOf(m.Data, "Subject")] = m
	}
	for _, name := range want {
		m, ok := bySubject[name]
		if !ok {
			t.Errorf("message %q was not delivered", name)
			continue
		}
		if m.From != "alice@sender.e2e.test" || strings.Join(m.To, ",") != "bob@rcpt.e2e.test" {
			t.Errorf("message %q delivered with envelope <%s> → %q, want <alice@sender.e2e.test> → bob@rcpt.e2e.test", name, m.From, m.To)
		}
		if rcvd := headerOf(m.Data, "Received"); !strings.Contains(rcvd, "(Authenticated sender: alice)") || !strings.Contains(rcvd, "with ESMTPSA") {
			t.Errorf("message %q has Received: %q, want it to name the authenticated sender alice and ESMTPSA", name, rcvd)
		}
	}
}

// TestE2E_AUTHBeforeSTARTTLSRefused sends AUTH on the plaintext side of
// the STARTTLS listener although EHLO did not offer it: it is refused with
// an encryption-required reply before the credentials are looked at, and
// the same credentials then succeed after STARTTLS in the same session.
func TestE2E_AUTHBeforeSTARTTLSRefused(t *testing.T) {
	t.Parallel()
	_, nextAddr := startSink(t, sink.Options{})
	srv := startRelay(t, submissionConfig(t, nextAddr), nil)

	conn, err := net.DialTimeout("tcp", srv.addr("submission"), e2eTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(e2eTimeout))
	d := &dialogue{t: t, tp: textproto.NewConn(conn)}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00correct horse battery staple"))

	d.expect(220, "")
	ehlo := d.cmd("EHLO client.e2e.test", 250)
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before STARTTLS = %q, want STARTTLS offered and AUTH not", ehlo)
	}
	// RFC 4954 §4: AUTH PLAIN and LOGIN only under TLS; the refusal is
	// RFC 4954 §6's 538 5.7.11, as Postfix answers.
	d.cmd("AUTH PLAIN "+plain, 538, "5.7.11")
	d.cmd("MAIL FROM:<alice@sender.e2e.test>", 530, "5.7.0")
	d.cmd("STARTTLS", 220)

	tc := tls.Client(conn, &tls.Config{RootCAs: srv.CertPool(), ServerName: e2eHostname})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	d.tp = textproto.NewConn(tc)
	if ehlo := d.cmd("EHLO client.e2e.test", 250); !strings.Contains(ehlo, "AUTH LOGIN PLAIN") && !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO after STARTTLS = %q, want AUTH PLAIN and LOGIN offered", ehlo)
	}
	d.cmd("AUTH PLAIN "+plain, 235) // go-smtp says 2.0.0 where RFC 4954 §6 has 2.7.0
	d.cmd("QUIT", 221)
}

// dialogue is a raw SMTP conversation: each command with the reply it must
// get.
type dialogue struct {
	t  *testing.T
	tp *textproto.Conn
}

// cmd sends line and checks the reply's code and, when given, its enhanced
// status code; it returns the reply text.
func (d *dialogue) cmd(line string, code int, enhanced ...string) string {
	d.t.Helper()
	if err := d.tp.PrintfLine("%s", line); err != nil {
		d.t.Fatalf("send %q: %v", line, err)
	}
	return d.expectFor(line, code, enhanced...)
}

// expect reads a reply that arrives unasked (the greeting).
func (d *dialogue) expect(code int, enhanced string) string {
	d.t.Helper()
	if enhanced == "" {
		return d.expectFor("(connect)", code)
	}
	return d.expectFor("(connect)", code, enhanced)
}

func (d *dialogue) expectFor(line string, code int, enhanced ...string) string {
	d.t.Helper()
	got, msg, err := d.tp.ReadResponse(0)
	if err != nil && got == 0 {
		d.t.Fatalf("%s: reading the reply: %v", line, err)
	}
	if got != code || (len(enhanced) > 0 && !strings.HasPrefix(msg, enhanced[0]+" ")) {
		want := fmt.Sprint(code)
		if len(enhanced) > 0 {
			want += " " + enhanced[0]
		}
		d.t.Errorf("%s = %d %s, want %s", line, got, msg, want)
	}
	return msg
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
