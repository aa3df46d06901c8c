package interop

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"

	"smarthost/relay/sink"
)

func TestStartPostfix_ReceivesMailForItsDomains(t *testing.T) {
	t.Parallel()
	cert := newTestCert(t, t.TempDir(), "home.example.com")
	p := StartPostfix(t, PostfixOptions{
		Listen:   "127.0.0.1:0",
		Hostname: "home.example.com",
		Domains:  []string{"example.com"},
		CertFile: cert.CertFile,
		KeyFile:  cert.KeyFile,
	})
	msg := message("Sender <sender@example.org>", "alice@example.com, bob@example.com", "inbound one", "Hello home.")
	rcptErrs, err := send(t, p.Addr, submission{
		From:     "sender@example.org",
		To:       []string{"alice@example.com", "bob@example.com", "carol@example.net"},
		Msg:      msg,
		StartTLS: &tls.Config{RootCAs: cert.Pool, ServerName: "home.example.com"},
	})
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	for i, want := range []int{0, 0, 554} {
		if code := replyCode(rcptErrs[i]); code != want {
			t.Errorf("RCPT %d: %v, want code %d (0 = accepted; 554 = relay denied outside Domains)", i, rcptErrs[i], want)
		}
	}

	got := p.WaitDelivered(t, 2, testTimeout)
	if len(got) != 2 {
		t.Fatalf("delivered %d messages, want 2 (one per local recipient)", len(got))
	}
	var rcpts []string
	for _, d := range got {
		rcpts = append(rcpts, d.Recipient)
		if d.Sender != "sender@example.org" {
			t.Errorf("%s: Sender = %q, want sender@example.org", d.Path, d.Sender)
		}
		if s := d.Header.Get("Subject"); s != "inbound one" {
			t.Errorf("%s: Subject = %q, want %q", d.Path, s, "inbound one")
		}
		if id := d.Header.Get("Message-ID"); id != "<inbound-one@example.org>" {
			t.Errorf("%s: Message-ID = %q", d.Path, id)
		}
		// smtpd_tls_received_header: the trace field says TLS was used.
		if rcv := d.Header.Get("Received"); !strings.Contains(rcv, "by home.example.com") || !strings.Contains(rcv, "(using TLS") {
			t.Errorf("%s: Received = %q, want one by home.example.com noting TLS", d.Path, rcv)
		}
		if body := strings.TrimSpace(string(d.Body)); body != "Hello home." {
			t.Errorf("%s: body = %q", d.Path, body)
		}
	}
	slices.Sort(rcpts)
	if want := []string{"alice@example.com", "bob@example.com"}; !slices.Equal(rcpts, want) {
		t.Errorf("recipients = %q, want %q", rcpts, want)
	}
}

func TestStartPostfix_RecipientsLimitsWhoExists(t *testing.T) {
	t.Parallel()
	p := StartPostfix(t, PostfixOptions{
		Listen:     "127.0.0.1:0",
		Domains:    []string{"example.com"},
		Recipients: []string{"alice@example.com"},
	})
	rcptErrs, err := send(t, p.Addr, submission{
		From: "sender@example.org",
		To:   []string{"alice@example.com", "nobody@example.com"},
		Msg:  message("sender@example.org", "alice@example.com", "known only", "x"),
	})
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if rcptErrs[0] != nil {
		t.Errorf("RCPT alice@example.com: %v, want accepted", rcptErrs[0])
	}
	var se *smtp.SMTPError
	if !errors.As(rcptErrs[1], &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("RCPT nobody@example.com: %v, want 550 5.1.1", rcptErrs[1])
	}
	if got := p.WaitDelivered(t, 1, testTimeout); got[0].Recipient != "alice@example.com" {
		t.Errorf("delivered to %q, want alice@example.com", got[0].Recipient)
	}
}

// The home server's outbound side: sendmail → relayhost over implicit TLS
// (smtp_tls_wrappermode), with and without certificate verification.
func TestStartPostfix_RelaysOverImplicitTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		level TLSLevel
		// match is Relay.Match; the sink's certificate is for sink.test.
		match string
		// logged is what the Postfix log must say about the connection.
		logged string
		// refused: the certificate check fails, so mail stays deferred.
		refused bool
	}{
		{name: "encrypt", level: TLSEncrypt, logged: "TLS connection established to 127.0.0.1[127.0.0.1]:"},
		{name: "verify", level: TLSVerify, match: "sink.test", logged: "Verified TLS connection established to 127.0.0.1[127.0.0.1]:"},
		{name: "verify wrong name", level: TLSVerify, match: "other.test", logged: "certificate verification failed", refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cert := newTestCert(t, t.TempDir(), "sink.test")
			s, addr := startSink(t, sink.Options{Hostname: "sink.test", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.Pair}}, ImplicitTLS: true})
			relay := PostfixRelay{Host: "[127.0.0.1]:" + portOf(addr), WrapperMode: true, TLS: tt.level, Match: tt.match}
			if tt.level == TLSVerify {
				relay.CAFile = cert.CertFile
			}
			p := StartPostfix(t, PostfixOptions{Hostname: "home.example.com", Relay: relay})
			p.Sendmail(t, "alice@example.com", []string{"friend@example.net"},
				[]byte("From: alice@example.com\nTo: friend@example.net\nSubject: out\n\nHello out there.\n"))

			if tt.refused {
				q := waitQueue(t, p, "deferred", func(q []QueuedMessage) bool {
					return len(q) == 1 && q[0].Queue == "deferred"
				})
				if reason := q[0].Recipients[0].DelayReason; !strings.Contains(reason, "certificate") {
					t.Errorf("delay reason = %q, want a certificate failure", reason)
				}
				if n := len(s.Messages()); n != 0 {
					t.Errorf("sink received %d messages despite the failed certificate check", n)
				}
			} else {
				ctx := t.Context()
				msgs, err := s.Wait(ctx, 1)
				if err != nil {
					t.Fatalf("sink: %v\npostfix log:\n%s", err, p.Log())
				}
				m := msgs[0]
				if m.TLS == "" || m.From != "alice@example.com" || !slices.Equal(m.To, []string{"friend@example.net"}) {
					t.Errorf("sink got TLS %q from %q to %q, want TLS, alice@example.com, friend@example.net", m.TLS, m.From, m.To)
				}
				if !strings.Contains(string(m.Data), "Subject: out\r\n") || !strings.Contains(string(m.Data), "by home.example.com (Postfix") {
					t.Errorf("sink got message:\n%s\nwant the Subject and Postfix's Received line", m.Data)
				}
			}
			if !strings.Contains(p.Log(), tt.logged) {
				t.Errorf("postfix log does not contain %q:\n%s", tt.logged, p.Log())
			}
		})
	}
}

// The home server's outbound side against the real smarthost: implicit
// TLS and SASL PLAIN, as the README's home-server guide sets it up.
// smarthost trusts no network here, so mail reaches the next hop only if
// Postfix authenticated.
func TestStartPostfix_AuthenticatesToSmarthost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		ok       bool
	}{
		{name: "right password", password: smarthostPassword, ok: true},
		{name: "wrong password", password: "wrong", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next, nextAddr := startSink(t, sink.Options{Hostname: "mx.example.net"})
			cert := newTestCert(t, t.TempDir(), "smarthost.test")
			submissions := startSmarthost(t, cert, nextAddr)
			p := StartPostfix(t, PostfixOptions{
				Hostname: "home.example.com",
				Domains:  []string{"example.com"},
				Relay: PostfixRelay{
					Host:        "[127.0.0.1]:" + portOf(submissions),
					WrapperMode: true,
					TLS:         TLSEncrypt,
					User:        smarthostUser,
					Password:    tt.password,
				},
			})
			p.Sendmail(t, "alice@example.com", []string{"friend@example.net"},
				[]byte("From: alice@example.com\nTo: friend@example.net\nSubject: via smarthost\n\nHello.\n"))

			if !tt.ok {
				q := waitQueue(t, p, "deferred", func(q []QueuedMessage) bool {
					return len(q) == 1 && q[0].Queue == "deferred"
				})
				reason := q[0].Recipients[0].DelayReason
				if !strings.Contains(reason, "SASL authentication failed") || !strings.Contains(reason, "535") {
					t.Errorf("delay reason = %q, want SASL authentication failed with 535", reason)
				}
				if n := len(next.Messages()); n != 0 {
					t.Errorf("next hop received %d messages although AUTH failed", n)
				}
				return
			}
			msgs, err := next.Wait(t.Context(), 1)
			if err != nil {
				t.Fatalf("next hop: %v\npostfix log:\n%s", err, p.Log())
			}
			data := string(msgs[0].Data)
			for _, want := range []string{
				"Received: from home.example.com",               // smarthost's trace field…
				"(using TLSv1.3",                                // …over implicit TLS…
				"(Authenticated sender: " + smarthostUser + ")", // …after AUTH
				"by home.example.com (Postfix",                  // and Postfix's own below it
			} {
				if !strings.Contains(data, want) {
					t.Errorf("delivered message lacks %q:\n%s", want, data)
				}
			}
			if len(p.Queue(t)) != 0 {
				t.Errorf("postfix queue not empty after delivery: %+v", p.Queue(t))
			}
		})
	}
}

// The home server down and back up: refused while stopped, mail posted
// meanwhile kept, everything delivered after Start, and nothing left
// running after Stop.
func TestPostfix_StopThenStart(t *testing.T) {
	t.Parallel()
	p := StartPostfix(t, PostfixOptions{Listen: "127.0.0.1:0", Hostname: "home.example.com", Domains: []string{"example.com"}})
	sendOne := func(subject string) {
		t.Helper()
		if _, err := send(t, p.Addr, submission{From: "s@example.org", To: []string{"alice@example.com"}, Msg: message("s@example.org", "alice@example.com", subject, "x")}); err != nil {
			t.Fatalf("DATA: %v", err)
		}
	}
	sendOne("before stop")
	p.WaitDelivered(t, 1, testTimeout)

	pid, addr := p.master.Process.Pid, p.Addr
	p.Stop(t)
	if p.Running() {
		t.Error("Running() = true after Stop")
	}
	if left := processesOf(pid, p.Dir); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to %s while stopped: %v, want connection refused", addr, err)
	}
	p.Sendmail(t, "alice@example.com", []string{"bob@example.com"}, []byte("Subject: while stopped\n\nkept in maildrop\n"))
	if q := p.Queue(t); len(q) != 1 || q[0].Queue != "maildrop" {
		t.Errorf("queue while stopped = %+v, want the message in maildrop", q)
	}

	p.Start(t)
	if p.Addr != addr {
		t.Errorf("Addr after Start = %s, want %s as before", p.Addr, addr)
	}
	sendOne("after start")
	got := p.WaitDelivered(t, 3, testTimeout)
	var subjects []string
	for _, d := range got {
		subjects = append(subjects, d.Header.Get("Subject"))
	}
	slices.Sort(subjects)
	if want := []string{"after start", "before stop", "while stopped"}; !slices.Equal(subjects, want) {
		t.Errorf("delivered subjects = %q, want %q", subjects, want)
	}
}

func TestStartPostfix_LeavesNoProcessBehind(t *testing.T) {
	t.Parallel()
	var pid int
	var dir string
	t.Run("instance", func(t *testing.T) {
		p := StartPostfix(t, PostfixOptions{Listen: "127.0.0.1:0", Domains: []string{"example.com"}})
		pid, dir = p.master.Process.Pid, p.Dir
		// Deliver a message so that smtpd, cleanup, qmgr and virtual are
		// running when the test ends, not only master.
		if _, err := send(t, p.Addr, submission{From: "s@example.org", To: []string{"a@example.com"}, Msg: message("s@example.org", "a@example.com", "live", "x")}); err != nil {
			t.Fatalf("DATA: %v", err)
		}
		p.WaitDelivered(t, 1, testTimeout)
		// The check below must be able to fail: it sees them now.
		running := processesOf(pid, dir)
		if len(running) < 3 {
			t.Fatalf("processesOf(master %d) = %v, want master and its daemons", pid, running)
		}
	})
	if left := processesOf(pid, dir); len(left) > 0 {
		t.Errorf("processes left after the test: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("instance directory %s after the test: %v, want removed", dir, err)
	}
}

// A port taken when master binds is reported as errAddrInUse, which
// StartPostfix retries with another port, and leaves nothing running.
func TestPostfix_TakenPortIsReported(t *testing.T) {
	t.Parallel()
	p := StartPostfix(t, PostfixOptions{Listen: "127.0.0.1:0"})
	p.Stop(t)
	l, err := net.Listen("tcp", p.Addr)
	if err != nil {
		t.Fatalf("take %s: %v", p.Addr, err)
	}
	err = p.startMaster(t)
	l.Close()
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("startMaster with %s taken: %v, want errAddrInUse", p.Addr, err)
	}
	if p.Running() {
		t.Error("Running() = true after a failed start")
	}
	p.Start(t)
	if err := greets(p.Addr, testTimeout); err != nil {
		t.Errorf("after the port was freed: %v", err)
	}
}

func TestStartPostfix_ListensOnTheAskedPort(t *testing.T) {
	t.Parallel()
	port, err := pickPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := StartPostfix(t, PostfixOptions{Listen: want})
	if p.Addr != want {
		t.Errorf("Addr = %s, want %s", p.Addr, want)
	}
	if err := greets(want, testTimeout); err != nil {
		t.Error(err)
	}
}

func TestPostfixOptions_ListenAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		listen string
		host   string
		port   int
		ok     bool
	}{
		{"", "", 0, true},
		{"127.0.0.1:0", "127.0.0.1", 0, true},
		{"127.0.0.1:10025", "127.0.0.1", 10025, true},
		{"127.0.0.2:10025", "", 0, false},
		{"0.0.0.0:25", "", 0, false},
		{"192.0.2.1:25", "", 0, false},
		{"[::1]:25", "", 0, false},
		{"localhost:25", "", 0, false},
		{"127.0.0.1", "", 0, false},
	}
	for _, tt := range tests {
		host, port, err := PostfixOptions{Listen: tt.listen}.listenAddr()
		if (err == nil) != tt.ok || host != tt.host || port != tt.port {
			t.Errorf("listenAddr(%q) = %q, %d, %v; want %q, %d, ok %v", tt.listen, host, port, err, tt.host, tt.port, tt.ok)
		}
	}
}

func TestPostfixOptions_Validate(t *testing.T) {
	t.Parallel()
	relay := "[127.0.0.1]:465"
	tests := []struct {
		name string
		opts PostfixOptions
		ok   bool
	}{
		{name: "zero", ok: true},
		{name: "home server", opts: PostfixOptions{Domains: []string{"example.com"}, Relay: PostfixRelay{Host: relay, WrapperMode: true, TLS: TLSEncrypt, User: "u", Password: "p w:x"}}, ok: true},
		{name: "verify with match", opts: PostfixOptions{Relay: PostfixRelay{Host: relay, TLS: TLSVerify, CAFile: "/ca.pem", Match: "mail.example.org"}}, ok: true},
		{name: "unknown level", opts: PostfixOptions{Relay: PostfixRelay{Host: relay, TLS: "required"}}},
		{name: "wrapper mode without TLS", opts: PostfixOptions{Relay: PostfixRelay{Host: relay, WrapperMode: true, TLS: TLSMay}}},
		{name: "match without verify", opts: PostfixOptions{Relay: PostfixRelay{Host: relay, TLS: TLSEncrypt, Match: "x"}}},
		{name: "relay settings without host", opts: PostfixOptions{Relay: PostfixRelay{User: "u", Password: "p"}}},
		{name: "user without password", opts: PostfixOptions{Relay: PostfixRelay{Host: relay, User: "u"}}},
		{name: "cert without key", opts: PostfixOptions{CertFile: "/c.pem"}},
		{name: "line break in a value", opts: PostfixOptions{Hostname: "a\nrelayhost = evil"}},
		{name: "space in a domain", opts: PostfixOptions{Domains: []string{"example.com other.com"}}},
		{name: "line break in Main", opts: PostfixOptions{Main: map[string]string{"smtpd_banner": "x\ny = z"}}},
	}
	for _, tt := range tests {
		err := tt.opts.validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestPostfix_MainOverridesDerivedSettings(t *testing.T) {
	t.Parallel()
	p := &Postfix{Dir: "/tmp/pfX", opts: PostfixOptions{
		Hostname: "home.example.com",
		Relay:    PostfixRelay{Host: "[127.0.0.1]:465", TLS: TLSEncrypt},
		Main:     map[string]string{"smtp_tls_security_level": "may", "smtp_tls_loglevel": "2", "header_size_limit": "4096"},
	}}
	cf := p.mainCF()
	for _, want := range []string{"\nsmtp_tls_security_level = may\n", "\nsmtp_tls_loglevel = 2\n", "\nheader_size_limit = 4096\n", "\nrelayhost = [127.0.0.1]:465\n", "\nmyhostname = home.example.com\n"} {
		if !strings.Contains(cf, want) {
			t.Errorf("main.cf lacks %q:\n%s", strings.TrimSpace(want), cf)
		}
	}
	for _, param := range []string{"smtp_tls_security_level", "smtp_tls_loglevel"} {
		if n := strings.Count(cf, "\n"+param+" = "); n != 1 {
			t.Errorf("main.cf sets %s %d times, want once", param, n)
		}
	}
}

// replyCode is the SMTP code of err, 0 for nil and -1 for an error that is
// not a reply.
func replyCode(err error) int {
	if err == nil {
		return 0
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
