package load

import (
	"bytes"
	"encoding/base64"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/relay/sink"
)

func TestRun_SendsEveryMessageWithItsSize(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{})
	res, err := Run(waitCtx(t), Options{Addr: addr, Messages: 25, Sessions: 5, PerSession: 3, Size: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 25 || res.Failed != 0 || res.Bytes != 25*2000 {
		t.Errorf("Run = %s, want 25 messages of 2000 bytes, none failed", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("latencies p50 %v p99 %v, want 0 < p50 <= p99", res.P50, res.P99)
	}
	msgs := s.Messages()
	if len(msgs) != 25 {
		t.Fatalf("sink received %d messages, want 25", len(msgs))
	}
	ids := map[string]bool{}
	conns := map[int]int{}
	for _, m := range msgs {
		if len(m.Data) != 2000 {
			t.Errorf("message of %d bytes, want 2000", len(m.Data))
		}
		if m.From != "load@example.com" || len(m.To) != 1 || m.To[0] != "sink@example.net" {
			t.Errorf("envelope %s → %v, want load@example.com → sink@example.net", m.From, m.To)
		}
		if !bytes.HasPrefix(m.Data, []byte("From: <load@example.com>\r\nTo: <sink@example.net>\r\n")) {
			t.Errorf("message starts %.60q, want From: and To: fields", m.Data)
		}
		id := regexp.MustCompile(`Message-ID: <[^>]+>`).Find(m.Data)
		if id == nil || ids[string(id)] {
			t.Errorf("Message-ID %q missing or repeated", id)
		}
		ids[string(id)] = true
		conns[m.Conn]++
	}
	for c, n := range conns {
		if n > 3 {
			t.Errorf("connection %d carried %d messages, want at most 3 (PerSession)", c, n)
		}
	}
}

func TestRun_TLSModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []config.TLSMode{config.TLSStartTLS, config.TLSImplicit} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{TLSConfig: serverTLS(t), ImplicitTLS: mode == config.TLSImplicit})
			res, err := Run(waitCtx(t), Options{Addr: addr, TLS: mode, Messages: 6, Sessions: 2, PerSession: 1, Size: 1024})
			if err != nil || res.Messages != 6 || res.Failed != 0 {
				t.Fatalf("Run = %s, %v; want 6 messages", res, err)
			}
			for _, m := range s.Messages() {
				if m.TLS != "TLSv1.3" {
					t.Errorf("message travelled with TLS %q, want TLSv1.3", m.TLS)
				}
			}
		})
	}
}

func TestRun_StartTLSNotOfferedFailsEverySession(t *testing.T) {
	t.Parallel()
	_, addr := startSink(t, sink.Options{})
	res, _ := Run(waitCtx(t), Options{Addr: addr, TLS: config.TLSStartTLS, Messages: 3, Sessions: 1, Size: 100})
	if res.Messages != 0 || res.Failed != 3 || !strings.Contains(res.FirstError, "STARTTLS: not offered") {
		t.Errorf("Run against a server without STARTTLS = %s, want 3 failed with 'not offered'", res)
	}
}

func TestRun_AuthPlainWithInitialResponse(t *testing.T) {
	t.Parallel()
	want := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00s3cret"))
	srv := startScripted(t, func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			return "250-scripted.example\r\n250 AUTH PLAIN LOGIN"
		case strings.HasPrefix(line, "AUTH"):
			if line != want {
				return "535 5.7.8 bad credentials"
			}
			return "235 2.7.0 ok"
		case line == "DATA":
			return "354 go ahead"
		case line == "QUIT":
			return "221 bye"
		}
		return "250 ok"
	})
	res, err := Run(waitCtx(t), Options{Addr: srv.addr, User: "alice", Password: "s3cret", Messages: 2, Sessions: 1, Size: 300})
	if err != nil || res.Messages != 2 || res.Failed != 0 {
		t.Fatalf("Run with AUTH = %s, %v; want 2 messages", res, err)
	}
	var got []string
	for len(srv.lines) > 0 {
		got = append(got, <-srv.lines)
	}
	wantLines := []string{"EHLO smtpload.example", want,
		"MAIL FROM:<load@example.com>", "RCPT TO:<sink@example.net>", "DATA",
		"MAIL FROM:<load@example.com>", "RCPT TO:<sink@example.net>", "DATA", "QUIT"}
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("dialogue:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
}

func TestRun_RefusalsAreCountedAndTheSessionGoesOn(t *testing.T) {
	t.Parallel()
	var n int
	s, addr := startSink(t, sink.Options{Reply: func(cmd sink.Command, _ string) *sink.Reply {
		if cmd == sink.CommandDATA {
			// Sessions is 1: the hook runs on one goroutine at a time.
			if n++; n%3 == 0 {
				return &sink.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
			}
		}
		return nil
	}})
	res, err := Run(waitCtx(t), Options{Addr: addr, Messages: 9, Sessions: 1, Size: 500})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 6 || res.Failed != 3 || !strings.Contains(res.FirstError, "451") {
		t.Errorf("Run = %s, want 6 sent, 3 failed with 451", res)
	}
	if c := s.Connections(); c != 1 {
		t.Errorf("connections = %d, want 1: a refusal does not end the session", c)
	}
}

func TestRun_DeadServerFailsEveryMessage(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res, err := Run(waitCtx(t), Options{Addr: addr, Messages: 4, Sessions: 2, Size: 100, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 0 || res.Failed != 4 || res.FirstError == "" {
		t.Errorf("Run against a closed port = %s, want 4 failed with an error", res)
	}
}

func TestRun_RejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"no address", Options{Messages: 1, Sessions: 1, Size: 1}},
		{"no messages", Options{Addr: "127.0.0.1:25", Sessions: 1, Size: 1}},
		{"no sessions", Options{Addr: "127.0.0.1:25", Messages: 1, Size: 1}},
		{"no size", Options{Addr: "127.0.0.1:25", Messages: 1, Sessions: 1}},
		{"bad TLS mode", Options{Addr: "127.0.0.1:25", Messages: 1, Sessions: 1, Size: 1, TLS: "ssl"}},
	}
	for _, tt := range tests {
		if _, err := Run(waitCtx(t), tt.opts); err == nil {
			t.Errorf("Run(%s) = nil error, want one", tt.name)
		}
	}
}

func TestResult_StringIsOneLineOfKeyValuePairs(t *testing.T) {
	t.Parallel()
	r := Result{Messages: 5000, Failed: 2, Bytes: 5 << 20, Elapsed: 4 * time.Second,
		P50: 1500 * time.Microsecond, P99: 12 * time.Millisecond, FirstError: `load: DATA: 451 "busy"`}
	want := `messages=5000 failed=2 bytes=5242880 seconds=4.000 msgs_per_s=1250.0 p50_ms=1.500 p99_ms=12.000 first_error="load: DATA: 451 \"busy\""`
	if got := r.String(); got != want {
		t.Errorf("Result.String() =\n%s\nwant\n%s", got, want)
	}
}

func TestNewMessage_HasTheAskedSize(t *testing.T) {
	t.Parallel()
	for _, size := range []int{300, 1 << 10, 1000 + 77, 100 << 10, 10 << 20} {
		m := newMessage("a@example.com", "b@example.net", "client.example", size, time.Unix(0, 0))
		got := len(m.header(42)) + len(m.body)
		if got != size {
			t.Errorf("message of size %d has %d bytes", size, got)
		}
		if !bytes.HasSuffix(m.body, []byte("\r\n")) || bytes.Contains(m.body, []byte("\r\n.")) {
			t.Errorf("size %d: body must end in CRLF and have no line starting with a dot", size)
		}
		for _, line := range bytes.Split(m.body[:len(m.body)-2], []byte("\r\n")) {
			if len(line) > 998 {
				t.Errorf("size %d: line of %d octets", size, len(line))
			}
		}
	}
	if a, b := len(newMessage("a@x", "b@y", "h", 100, time.Now()).header(1)), len(newMessage("a@x", "b@y", "h", 100, time.Now()).header(999999)); a != b {
		t.Errorf("header length depends on the sequence number: %d and %d", a, b)
	}
}

func TestPercentile_NearestRank(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tt := range []struct{ p, want int }{{50, 100}, {99, 198}, {100, 200}} {
		if got := percentile(d, tt.p); got != time.Duration(tt.want) {
			t.Errorf("percentile(1..200, %d) = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}
