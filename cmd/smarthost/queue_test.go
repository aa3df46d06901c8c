package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smarthost/queue"
	"smarthost/queue/control"
)

// queueEnv is a valid configuration whose state_dir is a fresh directory.
type queueEnv struct {
	config, stateDir string
}

func newQueueEnv(t *testing.T) queueEnv {
	t.Helper()
	dir := t.TempDir()
	e := queueEnv{config: filepath.Join(dir, "smarthost.toml"), stateDir: filepath.Join(dir, "state")}
	src := "hostname = \"mail.example.org\"\nstate_dir = \"state\"\n[tls]\nself_signed = true\n"
	if err := os.WriteFile(e.config, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return e
}

// runQueueCmd runs smarthost with args and returns exit code, stdout and
// stderr.
func runQueueCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

type idleDeliverer struct{}

func (idleDeliverer) Deliver(context.Context, *queue.Delivery) []queue.Result { return nil }

// startServer runs what serve runs for the queue commands: a queue in
// state_dir/queue and the control server on state_dir/control.sock.
func startServer(t *testing.T, e queueEnv) *queue.Queue {
	t.Helper()
	q, err := queue.Open(queue.Options{Dir: filepath.Join(e.stateDir, "queue"), Hostname: "mail.example.org",
		Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour, Concurrency: 1, Deliverer: idleDeliverer{}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := control.Listen(control.SocketPath(e.stateDir))
	if err != nil {
		t.Fatal(err)
	}
	s := control.NewServer(q, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		<-done
		q.Close()
	})
	return q
}

func TestQueue_SaysWhenServerIsNotRunning(t *testing.T) {
	t.Parallel()
	e := newQueueEnv(t)
	for _, args := range [][]string{{"queue", "list", "-config", e.config}, {"queue", "-config", e.config, "flush"}} {
		code, out, errOut := runQueueCmd(args...)
		want := "smarthost queue: smarthost is not running (no control socket at " + filepath.Join(e.stateDir, "control.sock") +
			"); start it with `smarthost serve`\n"
		if code != 1 || errOut != want || out != "" {
			t.Errorf("smarthost %q = exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", args, code, out, errOut, want)
		}
	}
}

func TestQueue_CommandsAgainstRunningServer(t *testing.T) {
	t.Parallel()
	e := newQueueEnv(t)
	q := startServer(t, e)
	d, err := q.Create()
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: quarterly report\r\n\r\nbody stays private\r\n"))
	env := queue.Envelope{From: "alice@example.com", Recipients: []string{"bob@example.net", "carol@example.net"}}
	if err := d.Commit(env, []byte("Received: by mail.example.org\r\n")); err != nil {
		t.Fatal(err)
	}
	id := string(d.ID())

	steps := []struct {
		args     []string
		wantCode int
		wantOut  []string // substrings of stdout
		wantErr  string   // substring of stderr
	}{
		{[]string{"list"}, 0, []string{id + " ", "alice@example.com", "bob@example.net  [pending]", "carol@example.net", "-- 1 Kbytes in 1 Request."}, ""},
		{[]string{"show", strings.ToLower(id)}, 0, []string{"queue_id:     " + id, "sender:       <alice@example.com>", "*** RECIPIENTS ***",
			"bob@example.net  [pending]", "no delivery attempts yet", "Subject: quarterly report", "Received: by mail.example.org"}, ""},
		{[]string{"hold", id}, 0, []string{"held: " + id}, ""},
		{[]string{"list"}, 0, []string{id + "!"}, ""},
		{[]string{"flush", id}, 1, nil, "on hold"},
		{[]string{"release", id}, 0, []string{"released: " + id}, ""},
		{[]string{"flush"}, 0, []string{"flushed"}, ""},
		{[]string{"show", "NOSUCHMESSAGE1"}, 1, nil, "no such message"},
		{[]string{"delete", "ALL"}, 0, []string{"deleted: 1 messages"}, ""},
		{[]string{"list"}, 0, []string{"Mail queue is empty"}, ""},
	}
	for _, s := range steps {
		args := append([]string{"queue"}, s.args...)
		args = append(args, "-config", e.config)
		code, out, errOut := runQueueCmd(args...)
		if code != s.wantCode || !strings.Contains(errOut, s.wantErr) {
			t.Errorf("smarthost %q = exit %d, stderr %q; want exit %d, stderr containing %q", args, code, errOut, s.wantCode, s.wantErr)
		}
		for _, w := range s.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("smarthost %q stdout lacks %q:\n%s", args, w, out)
			}
		}
		if strings.Contains(out, "body stays private") {
			t.Errorf("smarthost %q printed the message body", args)
		}
	}
}

func TestQueue_UsageErrors(t *testing.T) {
	t.Parallel()
	e := newQueueEnv(t)
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"queue"}, 2, "usage: smarthost queue"},
		{[]string{"queue", "purge"}, 2, `unknown action "purge"`},
		{[]string{"queue", "show"}, 2, "wrong number of queue IDs (0)"},
		{[]string{"queue", "hold", "A", "B"}, 2, "wrong number of queue IDs (2)"},
		{[]string{"queue", "delete"}, 2, "wrong number of queue IDs (0)"},
		{[]string{"queue", "show", "../../etc/passwd", "-config", e.config}, 1, "is not a queue ID"},
		{[]string{"queue", "list", "-config", filepath.Join(e.stateDir, "missing.toml")}, 1, "cannot find state_dir"},
	}
	for _, tt := range tests {
		code, _, errOut := runQueueCmd(tt.args...)
		if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("smarthost %q = exit %d, stderr %q; want exit %d, stderr containing %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
		}
	}
}
