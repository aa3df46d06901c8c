package load

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"smarthost/config"
)

func TestSink_CountsWhatTheGeneratorSends(t *testing.T) {
	t.Parallel()
	for _, fsync := range []bool{false, true} {
		t.Run(map[bool]string{false: "discard", true: "fsync"}[fsync], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, addr := startLoadSink(t, SinkOptions{Fsync: fsync, Dir: dir})
			res, err := Run(waitCtx(t), Options{Addr: addr, Messages: 40, Sessions: 4, PerSession: 5, Size: 3000})
			if err != nil || res.Messages != 40 || res.Failed != 0 {
				t.Fatalf("Run = %s, %v; want 40 messages", res, err)
			}
			st, err := s.Wait(waitCtx(t), 40)
			if err != nil {
				t.Fatal(err)
			}
			if st.Messages != 40 || st.Bytes != 40*3000 || st.Last.Before(st.First) {
				t.Errorf("sink stats = %s (first %v, last %v), want 40 messages of 3000 bytes", st, st.First, st.Last)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("sink left %d files in its directory", len(entries))
			}
		})
	}
}

func TestSink_STARTTLS(t *testing.T) {
	t.Parallel()
	s, addr := startLoadSink(t, SinkOptions{TLSConfig: serverTLS(t)})
	res, err := Run(waitCtx(t), Options{Addr: addr, TLS: config.TLSStartTLS, Messages: 5, Sessions: 2, Size: 1000})
	if err != nil || res.Messages != 5 {
		t.Fatalf("Run with STARTTLS = %s, %v; want 5 messages", res, err)
	}
	if st := s.Stats(); st.Messages != 5 {
		t.Errorf("sink counted %d messages, want 5", st.Messages)
	}
}

func TestSink_FsyncNeedsADirectory(t *testing.T) {
	t.Parallel()
	if _, err := NewSink(SinkOptions{Fsync: true}); err == nil {
		t.Error("NewSink with Fsync and no Dir = nil error, want one")
	}
}

// TestSink_Dialogue is the sink's protocol: pipelined commands answered in
// order, the end of data only at a line holding one dot (not inside a
// line longer than the read buffer), and errors for commands out of
// order.
func TestSink_Dialogue(t *testing.T) {
	t.Parallel()
	s, addr := startLoadSink(t, SinkOptions{Hostname: "sink.example"})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func() string {
		t.Helper()
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading reply after %q: %v", lines, err)
			}
			lines = append(lines, strings.TrimRight(line, "\r\n"))
			if len(line) < 4 || line[3] != '-' {
				return strings.Join(lines, "\n")
			}
		}
	}
	expect := func(send, want string) {
		t.Helper()
		if send != "" {
			c.Write([]byte(send))
		}
		if got := reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("after %q: reply %q, want prefix %q", send, got, want)
		}
	}
	expect("", "220 sink.example ESMTP")
	expect("EHLO client.example\r\n", "250-sink.example\n250-PIPELINING")
	expect("RCPT TO:<b@example.net>\r\n", "503 ")
	expect("DATA\r\n", "503 ")
	// Pipelined: three commands in one write, three replies in order.
	c.Write([]byte("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"))
	expect("", "250 2.1.0")
	expect("", "250 2.1.5")
	expect("", "354 ")
	// A line of exactly the read buffer's 64 KiB, then ".\r\n": that
	// dot ends the long line, not the message.
	long := strings.Repeat("x", 64<<10) + ".\r\n"
	body := "Subject: t\r\n\r\n..stuffed\r\n" + long + ". \r\n"
	expect(body+".\r\n", "250 2.0.0")
	expect("NOOP\r\n", "250 ")
	expect("QUIT\r\n", "221 ")
	st := s.Stats()
	if want := int64(len(body)); st.Messages != 1 || st.Bytes != want {
		t.Errorf("sink stats = %s, want 1 message of %d bytes", st, want)
	}
}
