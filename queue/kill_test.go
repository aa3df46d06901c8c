package queue

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smarthost/queue/mlog"
)

// The kill -9 test: a child process (this test binary, re-executed) commits
// messages from several goroutines and prints each queue ID once Commit
// has returned, which is when a session would answer 250. The parent
// SIGKILLs it mid-burst, several times, then opens the spool and delivers:
// every printed ID must arrive, and every message that arrives must be
// byte-for-byte what was written.

const (
	crashDirEnv   = "SMARTHOST_QUEUE_CRASH_DIR"
	crashStartEnv = "SMARTHOST_QUEUE_CRASH_START"
	crashWriters  = 8
)

// crashMessage returns the prepended header and data of message n. Sizes
// vary from a few bytes to ~140 KiB, so some messages span many writes.
func crashMessage(n int) (header, data string) {
	header = fmt.Sprintf("X-Seq: %d\r\n", n)
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%d@crash.example>\r\nSubject: message %d\r\n\r\n", n, n)
	lines := (n * 7919) % 4000
	for i := range lines {
		fmt.Fprintf(&b, "line %d of message %d\r\n", i, n)
	}
	return header, b.String()
}

// TestCrashHelper is the child process; it runs only when re-executed by
// TestCrash_KillDuringBurstLosesNothing and is killed, never returns.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrash_KillDuringBurstLosesNothing")
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	q, err := Open(Options{Dir: dir, Hostname: "crash.example", Retry: []time.Duration{time.Minute},
		Concurrency: 1, Deliverer: &fakeDeliverer{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var mu sync.Mutex
	for w := range crashWriters {
		go func() {
			for n := start + w; ; n += crashWriters {
				header, data := crashMessage(n)
				d, err := q.Create()
				if err == nil {
					_, err = d.Write([]byte(data))
				}
				if err == nil {
					err = d.Commit(Envelope{From: "a@crash.example", Recipients: []string{"b@crash.example"}}, []byte(header))
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "committed %d %s\n", n, d.ID())
				mu.Unlock()
			}
		}()
	}
	select {}
}

var committedLine = regexp.MustCompile(`^committed (\d+) ([0-9A-Z]{15})\n$`)

func TestCrash_KillDuringBurstLosesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kill -9 test skipped in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "queue")
	acked := make(map[ID]int) // ID → sequence number, printed after Commit returned
	const rounds, minTotal = 4, 500
	for round := 0; round < rounds || len(acked) < minTotal; round++ {
		if round > 20 {
			t.Fatalf("only %d messages acknowledged after %d rounds", len(acked), round)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(round*1_000_000))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a different point each round, while all writers are busy.
		killAfter := 100 + 37*round
		r := bufio.NewReader(out)
		seen := 0
		for {
			line, err := r.ReadString('\n')
			if m := committedLine.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				acked[ID(m[2])] = n
				seen++
				if seen == killAfter {
					cmd.Process.Kill() // SIGKILL; lines already written still count
				}
			}
			if err != nil {
				break // EOF once the child is dead; a partial last line is ignored
			}
		}
		cmd.Wait()
		if seen < killAfter {
			t.Fatalf("round %d: child died after %d commits, before the kill: %s", round, seen, stderr.String())
		}
	}

	log := newLogRecorder()
	deliv := &fakeDeliverer{}
	q, err := Open(Options{Dir: dir, Hostname: "crash.example", Retry: []time.Duration{time.Minute},
		Concurrency: 16, Deliverer: deliv, Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	queued := len(q.List())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	log.wait(t, queued, mlog.Removed)
	cancel()
	<-done

	delivered := make(map[ID]bool)
	for _, d := range deliv.deliveries("") {
		if delivered[d.ID] {
			t.Errorf("%s delivered twice", d.ID)
		}
		delivered[d.ID] = true
		var n int
		if _, err := fmt.Sscanf(string(d.Data), "X-Seq: %d\r\n", &n); err != nil {
			t.Errorf("%s: delivered message has no X-Seq header: %.60q", d.ID, d.Data)
			continue
		}
		header, data := crashMessage(n)
		if string(d.Data) != header+data {
			t.Errorf("%s (message %d) delivered %d bytes that differ from the %d written", d.ID, n, len(d.Data), len(header+data))
		}
		if want, ok := acked[d.ID]; ok && want != n {
			t.Errorf("%s delivered message %d, but was acknowledged for message %d", d.ID, n, want)
		}
	}
	lost := 0
	for id, n := range acked {
		if !delivered[id] {
			lost++
			t.Errorf("%s (message %d) was acknowledged but not delivered", id, n)
		}
	}
	if files := spoolFiles(t, dir); len(files) != 0 {
		t.Errorf("spool after delivering everything holds %d files", len(files))
	}
	t.Logf("%d messages acknowledged over the kills, %d recovered and delivered (%d committed but unacknowledged), %d lost",
		len(acked), len(delivered), len(delivered)-len(acked)+lost, lost)
}
