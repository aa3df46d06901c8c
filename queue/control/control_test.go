package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smarthost/queue"
)

// idleDeliverer is never called: these tests do not run the scheduler.
type idleDeliverer struct{}

func (idleDeliverer) Deliver(context.Context, *queue.Delivery) []queue.Result { return nil }

// newQueue opens a queue in a temporary directory.
func newQueue(t *testing.T) *queue.Queue {
	t.Helper()
	q, err := queue.Open(queue.Options{Dir: filepath.Join(t.TempDir(), "queue"), Hostname: "mail.example.org",
		Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour, Concurrency: 1, Deliverer: idleDeliverer{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func commit(t *testing.T, q *queue.Queue, subject string) queue.ID {
	t.Helper()
	d, err := q.Create()
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: " + subject + "\r\n\r\nbody\r\n"))
	env := queue.Envelope{From: "alice@example.com", Recipients: []string{"bob@example.net"}}
	if err := d.Commit(env, []byte("Received: by mail.example.org\r\n")); err != nil {
		t.Fatal(err)
	}
	return d.ID()
}

// serve starts a control server for q on a socket in a temporary directory
// and returns the socket's path.
func serve(t *testing.T, q *queue.Queue) string {
	t.Helper()
	path := SocketPath(t.TempDir())
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(q, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v, want nil after Close", err)
		}
	})
	return path
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientServer_AdminOperations(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	a := commit(t, q, "first")
	b := commit(t, q, "second")
	c := commit(t, q, "third")
	path := serve(t, q)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("control socket %s: %v, %v; want a socket with mode 0600", path, st.Mode(), err)
	}
	cl := dial(t, path)

	list, err := cl.List()
	if err != nil || len(list) != 3 || list[0].ID != a || list[0].From != "alice@example.com" || list[0].Recipients[0].State != queue.StatePending {
		t.Fatalf("List = %+v, %v; want a, b, c with their envelopes", list, err)
	}
	d, err := cl.Show(b)
	if err != nil || d.ID != b || !strings.Contains(d.Header, "Subject: second") || !strings.HasPrefix(d.Header, "Received: by mail.example.org") {
		t.Errorf("Show(%s) = %+v, %v; want its header", b, d, err)
	}
	if _, err := cl.Show("NOSUCHMESSAGE1"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show(unknown) = %v, want ErrNotFound across the socket", err)
	}

	if err := cl.Hold(a); err != nil {
		t.Fatalf("Hold = %v", err)
	}
	if err := cl.Flush(a); !errors.Is(err, queue.ErrHeld) {
		t.Errorf("Flush(held) = %v, want ErrHeld", err)
	}
	if list, _ := cl.List(); !list[0].Held {
		t.Errorf("List after Hold: %+v, want %s held", list[0], a)
	}
	if err := cl.Release(a); err != nil {
		t.Fatalf("Release = %v", err)
	}
	if list, _ := cl.List(); list[0].Held {
		t.Errorf("List after Release: %+v, want %s not held", list[0], a)
	}
	if err := cl.Flush(); err != nil {
		t.Errorf("Flush() = %v", err)
	}
	if n, err := cl.FlushDomain("EXAMPLE.net"); n != 3 || err != nil {
		t.Errorf("FlushDomain(example.net) = %d, %v; want 3, nil", n, err)
	}
	if n, err := cl.FlushDomain("elsewhere.example"); n != 0 || err != nil {
		t.Errorf("FlushDomain(elsewhere.example) = %d, %v; want 0, nil", n, err)
	}
	if _, err := cl.FlushDomain(""); err == nil {
		t.Errorf("FlushDomain(\"\") succeeded, want a bad-request error")
	}

	if err := cl.Delete(c, "NOSUCHMESSAGE1"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Delete(c, unknown) = %v, want ErrNotFound for the unknown ID", err)
	}
	if list, _ := cl.List(); len(list) != 2 {
		t.Errorf("List after Delete = %d messages, want 2", len(list))
	}
	if n, err := cl.DeleteAll(); n != 2 || err != nil {
		t.Errorf("DeleteAll = %d, %v; want 2, nil", n, err)
	}
	if list, err := cl.List(); len(list) != 0 || err != nil {
		t.Errorf("List after DeleteAll = %v, %v; want empty", list, err)
	}
}

func TestServer_RejectsBadRequests(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	path := serve(t, q)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	tests := []struct {
		request, code string
	}{
		{"not json", CodeBadRequest},
		{`{"op":"nuke"}`, CodeBadRequest},
		{`{"op":"show"}`, CodeBadRequest},
		{`{"op":"list","ids":["A"]}`, CodeBadRequest},
		{`{"op":"show","ids":["../../etc/passwd"]}`, CodeNotFound},
		{`{"op":"hold","ids":["NOSUCHMESSAGE1"]}`, CodeNotFound},
	}
	for _, tt := range tests {
		if _, err := conn.Write([]byte(tt.request + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: reading response: %v", tt.request, err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil || resp.Code != tt.code || resp.Error == "" {
			t.Errorf("request %s: response %s, want code %q with an error", tt.request, line, tt.code)
		}
	}
	// The connection survives bad requests.
	if _, err := conn.Write([]byte(`{"op":"list"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadBytes('\n'); err != nil || strings.Contains(string(line), "error") {
		t.Errorf("list after bad requests = %s, %v; want success", line, err)
	}
}

func TestDial_NotRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := SocketPath(dir)
	if _, err := Dial(missing); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Dial(no socket) = %v, want ErrNotRunning naming %s", err, missing)
	}

	// A socket file left by a crashed server: nobody listens.
	l, err := net.Listen("unix", missing)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := Dial(missing); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Dial(stale socket) = %v, want ErrNotRunning", err)
	}
	// Listen replaces the stale socket.
	l2, err := Listen(missing)
	if err != nil {
		t.Fatalf("Listen over a stale socket = %v", err)
	}
	defer l2.Close()
	// But not a live one.
	if _, err := Listen(missing); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen over a live socket = %v, want an in-use error", err)
	}
}

func TestServer_CloseEndsServeAndConnections(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	path := SocketPath(t.TempDir())
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(q, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	cl := dial(t, path)
	if _, err := cl.List(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	if _, err := cl.List(); err == nil {
		t.Errorf("request after Close succeeded, want the connection closed")
	}
	if _, err := Dial(path); err == nil {
		t.Errorf("Dial after Close succeeded, want no listener")
	}
}

func TestOp_CheckIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		op   Op
		n    int
		want bool
	}{
		{OpList, 0, true}, {OpList, 1, false},
		{OpShow, 1, true}, {OpShow, 0, false}, {OpShow, 2, false},
		{OpFlush, 0, true}, {OpFlush, 3, true},
		{OpDelete, 0, false}, {OpDelete, 3, true},
		{OpDeleteAll, 0, true}, {OpDeleteAll, 1, false},
		{OpHold, 1, true}, {OpRelease, 2, false},
	}
	for _, tt := range tests {
		if got := tt.op.checkIDs(tt.n) == nil; got != tt.want {
			t.Errorf("Op(%q).checkIDs(%d) ok = %v, want %v", tt.op, tt.n, got, tt.want)
		}
	}
	if Op("nuke").Valid() || !OpDeleteAll.Valid() {
		t.Errorf("Op.Valid: nuke valid or delete_all invalid")
	}
}
