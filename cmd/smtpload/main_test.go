package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"smarthost/relay/load"
)

var resultLine = regexp.MustCompile(`^messages=(\d+) failed=(\d+) bytes=\d+ seconds=[\d.]+ msgs_per_s=[\d.]+ p50_ms=[\d.]+ p99_ms=[\d.]+\n$`)

func TestSend_PrintsOneResultLine(t *testing.T) {
	t.Parallel()
	s, err := load.NewSink(load.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })

	var out, errOut bytes.Buffer
	code := run([]string{"send", "-addr", l.Addr().String(), "-n", "7", "-c", "3", "-m", "2", "-size", "2KiB"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("send exited %d: %s", code, errOut.String())
	}
	m := resultLine.FindStringSubmatch(out.String())
	if m == nil || m[1] != "7" || m[2] != "0" {
		t.Errorf("send printed %q, want one result line with messages=7 failed=0", out.String())
	}
	if st := s.Stats(); st.Messages != 7 || st.Bytes != 7*2048 {
		t.Errorf("sink got %s, want 7 messages of 2048 bytes", st)
	}
}

func TestSend_FailedMessagesExitOne(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"send", "-addr", addr, "-n", "2", "-timeout", "2s"}, &out, &errOut); code != 1 {
		t.Errorf("send to a closed port exited %d, want 1", code)
	}
	if !strings.Contains(out.String(), "failed=2") || !strings.Contains(out.String(), "first_error=") {
		t.Errorf("send printed %q, want failed=2 and the first error", out.String())
	}
}

func TestSink_ExitsAfterCountWithItsLine(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"sink", "-addr", "127.0.0.1:0", "-count", "3", "-starttls"}, &out, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "smtpload sink: listening on "))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Options{Addr: addr, TLS: "starttls", Messages: 3, Sessions: 1, Size: 500})
	if err != nil || res.Messages != 3 {
		t.Fatalf("sending to the sink: %s, %v", res, err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("sink exited %d, want 0", code)
		}
	case <-ctx.Done():
		t.Fatal("sink did not exit after -count messages")
	}
	if !strings.HasPrefix(out.String(), "messages=3 bytes=1500 ") {
		t.Errorf("sink printed %q, want its result line with messages=3 bytes=1500", out.String())
	}
}

func TestRun_UsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"blast"}, 2},
		{"bad flag", []string{"send", "-bogus"}, 2},
		{"bad TLS mode", []string{"send", "-tls", "ssl"}, 1},
		{"bad size", []string{"send", "-size", "lots"}, 2},
		{"help", []string{"send", "-h"}, 0},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if got := run(tt.args, &out, &errOut); got != tt.want {
			t.Errorf("%s: run(%q) = %d, want %d (stderr %q)", tt.name, tt.args, got, tt.want, errOut.String())
		}
	}
}
