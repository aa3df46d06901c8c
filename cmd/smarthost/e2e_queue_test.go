package main

import (
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"smarthost/queue"
	"smarthost/relay/sink"
)

// trustedConfig is a submission listener without TLS for clients in
// trusted_networks (127.0.0.0/8), as a home server on the same host would
// use, with every recipient routed to one next hop.
func trustedConfig(t *testing.T, nextHopAddr string) e2eConfig {
	return e2eConfig{
		Dir:       t.TempDir(),
		Trusted:   []string{"127.0.0.0/8"},
		Listeners: []e2eListener{{Name: "submission", TLS: "none", Role: "submission"}},
		Transport: map[string]string{"*": nextHop(nextHopAddr)},
	}
}

// TestE2E_QueueCommandsAgainstRunningServer is issue 3's "the queue commands
// work against a running server": with mail deferred by a next hop that
// answers 451, `smarthost queue` lists it with the last reply, shows one
// message's envelope, state and header, holds and releases, flushes
// without waiting for the retry timer (retry is one hour), deletes one
// message and then ALL, and says smarthost is not running once serve has
// stopped. Only the messages flushed after the next hop recovered arrive.
func TestE2E_QueueCommandsAgainstRunningServer(t *testing.T) {
	t.Parallel()
	var accepting atomic.Bool
	next, nextAddr := startSink(t, sink.Options{Reply: func(cmd sink.Command, arg string) *sink.Reply {
		if cmd == sink.CommandRCPT && (!accepting.Load() || strings.HasPrefix(arg, "stuck@")) {
			return &sink.Reply{Code: 451, Enhanced: "4.2.0", Text: "mailbox busy, try later"}
		}
		return nil
	}})
	c := trustedConfig(t, nextAddr)
	srv := startRelay(t, c, nil)

	msg := func(subject string) string {
		return "From: alice@sender.e2e.test\r\nSubject: " + subject + "\r\n\r\nthe body stays private\r\n"
	}
	from := "alice@sender.e2e.test"
	held := submit(t, srv.addr("submission"), from, []string{"bob@rcpt.e2e.test"}, msg("held, then released"))
	flushed := submit(t, srv.addr("submission"), from, []string{"bob@rcpt.e2e.test"}, msg("flushed"))
	stuck := submit(t, srv.addr("submission"), from, []string{"stuck@rcpt.e2e.test"}, msg("stuck"))
	deleted := submit(t, srv.addr("submission"), from, []string{"bob@rcpt.e2e.test"}, msg("deleted"))
	srv.waitQueue(t, "every message deferred once", attemptsDone(1, held, flushed, stuck, deleted))

	queueCmd := func(args ...string) (int, string, string) {
		return smarthostCmd(append(append([]string{"queue"}, args...), "-config", srv.Config)...)
	}
	runQueueSteps(t, srv.Config, []queueStep{
		{"list shows deferred mail with the last reply", []string{"list"}, 0, []string{
			held + " ", flushed + " ", stuck + " ", deleted + " ", from,
			"(451 4.2.0 mailbox busy, try later)", "bob@rcpt.e2e.test  [deferred, 1 attempts]",
			"stuck@rcpt.e2e.test  [deferred, 1 attempts]", "in 4 Requests."}, nil, ""},
		{"show prints envelope, state and header, never the body", []string{"show", strings.ToLower(stuck)}, 0, []string{
			"queue_id:     " + stuck, "state:        deferred", "sender:       <" + from + ">", "attempts:     1",
			"origin:       listener=submission role=submission client_ip=127.0.0.1 helo=client.e2e.test",
			"stuck@rcpt.e2e.test  [deferred, 1 attempts]", "last reply: 451 4.2.0 mailbox busy, try later",
			"attempt 1 deferred: stuck@rcpt.e2e.test via " + nextHop(nextAddr),
			"*** MESSAGE HEADER ***", "Received: from client.e2e.test", "Subject: stuck"}, []string{"the body stays private"}, ""},
		{"hold", []string{"hold", held}, 0, []string{"held: " + held}, nil, ""},
		{"list marks held mail with !", []string{"list"}, 0, []string{held + "!"}, nil, ""},
		{"show says on hold", []string{"show", held}, 0, []string{"state:        on hold"}, nil, ""},
		{"flush refuses held mail", []string{"flush", held}, 1, nil, nil, "on hold"},
		{"delete one message", []string{"delete", deleted}, 0, []string{"deleted: " + deleted}, nil, ""},
		{"a deleted message is gone", []string{"show", deleted}, 1, nil, nil, "no such message"},
		{"list after delete", []string{"list"}, 0, []string{held + "!", flushed + " ", stuck + " ", "in 3 Requests."}, []string{deleted}, ""},
	})

	// The next hop recovers, except for stuck@. Retry is one hour, so only
	// flush can make anything move within the test.
	accepting.Store(true)
	if code, out, errOut := queueCmd("flush"); code != 0 || !strings.Contains(out, "flushed") {
		t.Fatalf("smarthost queue flush = exit %d, %q, %q; want exit 0, flushed", code, out, errOut)
	}
	waitMessages(t, next, 1)
	srv.waitQueue(t, "stuck deferred twice, flushed delivered", func(l []queue.Summary) bool {
		return attemptsDone(2, stuck)(l) && findSummary(l, flushed) == nil
	})
	if code, out, errOut := queueCmd("release", held); code != 0 || !strings.Contains(out, "released: "+held) {
		t.Fatalf("smarthost queue release = exit %d, %q, %q; want exit 0, released", code, out, errOut)
	}
	if code, out, errOut := queueCmd("flush", held); code != 0 || !strings.Contains(out, "flushed: "+held) {
		t.Fatalf("smarthost queue flush %s = exit %d, %q, %q; want exit 0, flushed", held, code, out, errOut)
	}
	waitMessages(t, next, 2)
	srv.waitQueue(t, "released message delivered", func(l []queue.Summary) bool { return findSummary(l, held) == nil })

	runQueueSteps(t, srv.Config, []queueStep{
		{"only the stuck message is left", []string{"list"}, 0,
			[]string{stuck + " ", "stuck@rcpt.e2e.test  [deferred, 2 attempts]", "in 1 Request."}, []string{held, flushed}, ""},
		{"delete ALL", []string{"delete", "ALL"}, 0, []string{"deleted: 1 messages"}, nil, ""},
		{"the queue is empty", []string{"list"}, 0, []string{"Mail queue is empty"}, nil, ""},
	})

	var subjects []string
	for _, m := range next.Messages() {
		subjects = append(subjects, headerOf(m.Data, "Subject"))
	}
	slices.Sort(subjects)
	if want := []string{"flushed", "held, then released"}; !slices.Equal(subjects, want) {
		t.Errorf("next hop received %q, want %q", subjects, want)
	}

	srv.Stop()
	code, out, errOut := queueCmd("list")
	want := "smarthost queue: smarthost is not running (no control socket at " +
		filepath.Join(c.stateDir(), "control.sock") + "); start it with `smarthost serve`\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("smarthost queue list after serve stopped = exit %d, stdout %q, stderr %q; want exit 1, stderr %q", code, out, errOut, want)
	}
}

// queueStep is one `smarthost queue` command and what it must print.
type queueStep struct {
	name     string
	args     []string // after "queue", before "-config F"
	wantCode int
	wantOut  []string // substrings of stdout
	notOut   []string // not in stdout
	wantErr  string   // substring of stderr
}

// runQueueSteps runs each step in this process against the server whose
// configuration file is config.
func runQueueSteps(t *testing.T, config string, steps []queueStep) {
	t.Helper()
	for _, s := range steps {
		args := append(append([]string{"queue"}, s.args...), "-config", config)
		code, out, errOut := smarthostCmd(args...)
		if code != s.wantCode || !strings.Contains(errOut, s.wantErr) {
			t.Errorf("%s: smarthost %q = exit %d, stderr %q; want exit %d, stderr containing %q", s.name, args, code, errOut, s.wantCode, s.wantErr)
		}
		for _, w := range s.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("%s: smarthost %q stdout lacks %q:\n%s", s.name, args, w, out)
			}
		}
		for _, w := range s.notOut {
			if strings.Contains(out, w) {
				t.Errorf("%s: smarthost %q stdout has %q:\n%s", s.name, args, w, out)
			}
		}
	}
}

// attemptsDone reports whether each message is in the queue, not being
// attempted, with at least n attempts behind it.
func attemptsDone(n int, ids ...string) func([]queue.Summary) bool {
	return func(l []queue.Summary) bool {
		for _, id := range ids {
			s := findSummary(l, id)
			if s == nil || s.Active || s.Attempts < n {
				return false
			}
		}
		return true
	}
}

func findSummary(l []queue.Summary, id string) *queue.Summary {
	for i := range l {
		if string(l[i].ID) == id {
			return &l[i]
		}
	}
	return nil
}
