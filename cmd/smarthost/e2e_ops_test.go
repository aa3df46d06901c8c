package main

// Day-two operations of `smarthost serve` as a process: systemd's notify
// protocol, reloads (good, broken, and under load), the fail2ban filter
// against real log lines, metrics that show what happened, and queue JSON.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smarthost/queue"
	"smarthost/relay/interop"
	"smarthost/relay/sdnotify/sdnotifytest"
	"smarthost/relay/sink"
)

// opsConfig is a submission listener (plain text, trusted loopback) and an
// implicit-TLS submission listener with one user, delivering everything to
// the sink at sinkAddr.
func opsConfig(t *testing.T, sinkAddr string) e2eConfig {
	return e2eConfig{
		Dir:     t.TempDir(),
		Trusted: []string{"127.0.0.0/8"},
		Listeners: []e2eListener{
			{Name: "submission", TLS: "none", Role: "submission", Address: reserveAddr(t)},
			{Name: "submissions", TLS: "implicit", Role: "submission", Address: reserveAddr(t)},
		},
		Users:     map[string]string{"alice": "correct horse battery staple"},
		Transport: map[string]string{"*": nextHop(sinkAddr)},
		Retry:     []string{"1s"},
	}
}

// appendConfig adds TOML text to a written configuration.
func appendConfig(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, text); err != nil {
		t.Fatal(err)
	}
}

func opsMessage(id string) string {
	return "From: alice@example.test\r\nTo: bob@example.net\r\nSubject: ops\r\nMessage-ID: <" + id + "@example.test>\r\n\r\nbody " + id + "\r\n"
}

// expectNotify waits for a notification starting with prefix, skipping
// watchdog pings.
func expectNotify(t *testing.T, got <-chan string, prefix string) {
	t.Helper()
	timeout := time.After(e2eTimeout)
	for {
		select {
		case s := <-got:
			if strings.HasPrefix(s, prefix) {
				return
			}
			if s != "WATCHDOG=1" {
				t.Fatalf("notification %q, want %q", s, prefix)
			}
		case <-timeout:
			t.Fatalf("no %q notification within %v", prefix, e2eTimeout)
		}
	}
}

// TestE2E_ServeSpeaksSystemdNotify: as a Type=notify service, serve says
// READY=1 once it listens, RELOADING=1 then READY=1 around SIGHUP, pings the
// watchdog, and says STOPPING=1 on SIGTERM, then exits 0.
func TestE2E_ServeSpeaksSystemdNotify(t *testing.T) {
	// Not parallel: the child inherits NOTIFY_SOCKET from our environment.
	s := sink.New(sink.Options{})
	sinkAddr := serveSink(t, s)
	c := opsConfig(t, sinkAddr)
	path := c.write(t)
	socket, got := sdnotifytest.Socket(t)
	t.Setenv("NOTIFY_SOCKET", socket)
	t.Setenv("WATCHDOG_USEC", "200000")
	child := startChild(t, path, "submission")
	expectNotify(t, got, "READY=1")
	expectNotify(t, got, "WATCHDOG=1")

	child.cmd.Process.Signal(syscall.SIGHUP)
	expectNotify(t, got, "RELOADING=1\nMONOTONIC_USEC=")
	expectNotify(t, got, "READY=1")
	child.waitLog(t, "msg=reloaded")

	child.cmd.Process.Signal(syscall.SIGTERM)
	expectNotify(t, got, "STOPPING=1")
	<-child.exited
	if code := child.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0", code)
	}
}

func serveSink(t *testing.T, s *sink.Sink) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// TestE2E_BrokenReloadKeepsTheRunningConfiguration: SIGHUP with a broken
// file logs every problem and changes nothing; mail still flows.
func TestE2E_BrokenReloadKeepsTheRunningConfiguration(t *testing.T) {
	t.Parallel()
	s := sink.New(sink.Options{})
	c := opsConfig(t, serveSink(t, s))
	path := c.write(t)
	child := startChild(t, path, "submission")
	appendConfig(t, path, "\n[limits]\nmax_recipients = \"lots\"\n")
	child.cmd.Process.Signal(syscall.SIGHUP)
	child.waitLog(t, "msg=reload_rejected")
	submit(t, c.Listeners[0].Address, "alice@example.test", []string{"bob@example.net"}, opsMessage("after-broken-reload"))
	waitMessages(t, s, 1)
	if !strings.Contains(child.log.String(), "max_recipients") {
		t.Errorf("the rejected reload does not name the key:\n%s", child.log.String())
	}
}

// TestE2E_ReloadUnderLoadLosesNothing sends SIGHUP again and again while
// four sessions submit mail: every message answered 250 arrives.
func TestE2E_ReloadUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	s := sink.New(sink.Options{DiscardData: false})
	c := opsConfig(t, serveSink(t, s))
	path := c.write(t)
	child := startChild(t, path, "submission")

	const sessions, perSession = 4, 100
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sighups := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				sighups <- n
				return
			case <-time.After(20 * time.Millisecond):
				child.cmd.Process.Signal(syscall.SIGHUP)
				n++
			}
		}
	}()
	var mu sync.Mutex
	accepted := map[string]bool{}
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSession; j++ {
				id := fmt.Sprintf("reload-%d-%d", i, j)
				if err := sendPlain(c.Listeners[0].Address, opsMessage(id)); err != nil {
					t.Errorf("%s: %v", id, err)
					continue
				}
				mu.Lock()
				accepted[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	reloads := <-sighups
	msgs := waitMessages(t, s, len(accepted))
	delivered := map[string]bool{}
	for _, m := range msgs {
		if id := messageID.FindSubmatch(m.Data); id != nil {
			delivered[string(id[1])] = true
		}
	}
	for id := range accepted {
		if !delivered[id] {
			t.Errorf("%s was answered 250 but never delivered", id)
		}
	}
	if n := strings.Count(child.log.String(), "msg=reloaded"); n == 0 {
		t.Errorf("no reload happened during the burst")
	}
	t.Logf("%d messages, %d SIGHUPs, %d reloads logged", len(accepted), reloads, strings.Count(child.log.String(), "msg=reloaded"))
}

var messageID = regexp.MustCompile(`Message-ID: <([^@>]+)@`)

// sendPlain submits one message over plain SMTP from the trusted network.
func sendPlain(addr, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail("alice@example.test", []string{"bob@example.net"}, strings.NewReader(msg))
}

// TestE2E_Fail2banFilterMatchesRealLogLines runs the shipped fail2ban
// filter over the lines serve wrote for real failed logins, as a terminal
// log (with timestamps) and as journald shows them.
func TestE2E_Fail2banFilterMatchesRealLogLines(t *testing.T) {
	t.Parallel()
	regex := interop.Require(t, "fail2ban-regex")["fail2ban-regex"]
	s := sink.New(sink.Options{})
	c := opsConfig(t, serveSink(t, s))
	child := startChild(t, c.write(t), "submissions")
	for i := 0; i < 3; i++ {
		cl, err := smtp.DialTLS(c.Listeners[1].Address, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Auth(sasl.NewPlainClient("", "alice", "wrong")); err == nil {
			t.Fatal("a wrong password was accepted")
		}
		cl.Close()
	}
	// The child's log reaches us through a pipe: wait for all three lines.
	var failures []string
	deadline := time.Now().Add(e2eTimeout)
	for {
		failures = failures[:0]
		for _, l := range strings.Split(child.log.String(), "\n") {
			if strings.Contains(l, "msg=auth_failed") {
				failures = append(failures, l)
			}
		}
		if len(failures) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(failures) != 3 {
		t.Fatalf("%d auth_failed lines, want 3:\n%s", len(failures), child.log.String())
	}
	filter, err := filepath.Abs("../../systemd/fail2ban/filter.d/smarthost.conf")
	if err != nil {
		t.Fatal(err)
	}
	// journald drops our timestamp and fail2ban prefixes the journal's
	// own, as "journalctl -o short" shows it.
	var journal []string
	for _, l := range failures {
		journal = append(journal, time.Now().Format("Jan _2 15:04:05")+" mail smarthost[4242]: "+strings.SplitN(l, " ", 2)[1])
	}
	for name, lines := range map[string][]string{"terminal": failures, "journald": journal} {
		logFile := filepath.Join(t.TempDir(), "smarthost.log")
		if err := os.WriteFile(logFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(regex, "-v", logFile, filter).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: fail2ban-regex: %v\n%s", name, err, out)
		}
		// -v lists each match with the address fail2ban would ban.
		if !strings.Contains(string(out), "Lines: 3 lines, 0 ignored, 3 matched, 0 missed") ||
			len(regexp.MustCompile(`(?m)^\|\s+127\.0\.0\.1\s`).FindAll(out, -1)) != 3 {
			t.Errorf("%s: fail2ban-regex did not match all three lines for 127.0.0.1:\n%s", name, out)
		}
	}
}

// TestE2E_MetricsShowWhatHappened scrapes /metrics after known traffic:
// two messages received and delivered, one relay attempt refused, three
// failed logins.
func TestE2E_MetricsShowWhatHappened(t *testing.T) {
	t.Parallel()
	s := sink.New(sink.Options{})
	c := opsConfig(t, serveSink(t, s))
	c.Listeners = append(c.Listeners, e2eListener{Name: "smtp", TLS: "none", Role: "mx", Address: reserveAddr(t)})
	path := c.write(t)
	metricsAddr := reserveAddr(t)
	appendConfig(t, path, fmt.Sprintf("\n[metrics]\naddress = %q\n", metricsAddr))
	child := startChild(t, path, "smtp")

	for _, id := range []string{"m1", "m2"} {
		submit(t, c.Listeners[0].Address, "alice@example.test", []string{"bob@example.net"}, opsMessage(id))
	}
	waitMessages(t, s, 2)
	relay, err := smtp.Dial(c.Listeners[2].Address)
	if err != nil {
		t.Fatal(err)
	}
	relay.Mail("spammer@outside.example", nil)
	if err := relay.Rcpt("victim@elsewhere.example", nil); err == nil {
		t.Fatal("the mx listener relayed")
	}
	relay.Close()
	for i := 0; i < 3; i++ {
		cl, err := smtp.DialTLS(c.Listeners[1].Address, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		cl.Auth(sasl.NewPlainClient("", "alice", "wrong"))
		cl.Close()
	}
	child.waitLog(t, "msg=removed")

	want := []string{
		`smarthost_messages_received_total{listener="submission"} 2`,
		`smarthost_messages_rejected_total{stage="rcpt",code="554"} 1`,
		`smarthost_deliveries_total{result="delivered",tls="no"} 2`,
		`smarthost_auth_failures_total 3`,
		`smarthost_delivery_delay_seconds_count 2`,
		`smarthost_queue_messages 0`,
		`smarthost_tls_certificate_expiry_timestamp_seconds `,
	}
	var body string
	deadline := time.Now().Add(e2eTimeout)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		if missing(body, want) == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // counters follow the log lines
	}
	if m := missing(body, want); m != "" {
		t.Errorf("metrics lack %q:\n%s", m, body)
	}
}

func missing(body string, want []string) string {
	for _, w := range want {
		if !strings.Contains(body, w) {
			return w
		}
	}
	return ""
}

// TestE2E_QueueJSON: list and show print JSON for scripts, with the
// per-attempt history.
func TestE2E_QueueJSON(t *testing.T) {
	t.Parallel()
	s := sink.New(sink.Options{Reply: func(cmd sink.Command, _ string) *sink.Reply {
		if cmd == sink.CommandRCPT {
			return &sink.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
		}
		return nil
	}})
	c := opsConfig(t, serveSink(t, s))
	c.Retry = []string{"1h"}
	path := c.write(t)
	child := startChild(t, path, "submission")
	id := submit(t, c.Listeners[0].Address, "alice@example.test", []string{"bob@example.net"}, opsMessage("json"))
	child.waitLog(t, "msg=deferred queue_id="+id)

	code, out, errOut := smarthostCmd("queue", "list", "-json", "-config", path)
	var list []queue.Summary
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || string(list[0].ID) != id {
		t.Fatalf("queue list -json = %d, %q, %q; want one message %s", code, out, errOut, id)
	}
	code, out, errOut = smarthostCmd("queue", "show", "-json", id, "-config", path)
	var d queue.Detail
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || len(d.History) != 1 || !strings.Contains(d.History[0].Reply, "451") {
		t.Fatalf("queue show -json = %d, %q, %q; want the attempt with its 451", code, out, errOut)
	}
}
