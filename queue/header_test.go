package queue

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smarthost/queue/mlog"
)

// inMemory returns what the queue holds in memory of a message's header,
// the header's length, and the history.
func inMemory(t *testing.T, q *Queue, id ID) (header []byte, length int64, history []Attempt) {
	t.Helper()
	q.mu.Lock()
	m := q.msgs[id]
	q.mu.Unlock()
	if m == nil {
		t.Fatalf("message %s is not in the queue", id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec.Header, m.rec.headerLen, m.rec.History
}

// onDisk returns the record file of a message.
func onDisk(t *testing.T, q *Queue, id ID) *record {
	t.Helper()
	b, err := readFile(q.spool.fs, q.spool.recordPath(id))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// attemptNumbers lists the attempt numbers of a history.
func attemptNumbers(h []Attempt) []int {
	var n []int
	for _, a := range h {
		n = append(n, a.Number)
	}
	return n
}

// A message waiting for its retry keeps its prepended header (Received,
// DKIM-Signature) and its attempt history on disk only, so a long queue
// costs memory by its envelopes; every rewrite of its record keeps both,
// adding new attempts once, and the retry delivers the header byte for
// byte.
func TestDeferredMessage_HeaderAndHistoryWaitOnDisk(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	var fail atomic.Bool
	fail.Store(true)
	tq.deliv.outcome = func(d *Delivery, rcpt string) Result {
		if fail.Load() {
			return tempFail("451 4.7.1 try later")
		}
		return Result{Reply: "250 2.0.0 Ok"}
	}
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(id))
	tq.clock.Set(tq.clock.Now().Add(time.Minute))
	tq.log.wait(t, 2, mlog.Deferred, mlog.QueueID, string(id))

	if h, n, hist := inMemory(t, tq.Queue, id); h != nil || n != int64(len(testHeader)) || hist != nil {
		t.Errorf("deferred message holds header %q (length %d) and history %v in memory, want none (length %d)", h, n, hist, len(testHeader))
	}
	if got := attemptNumbers(onDisk(t, tq.Queue, id).History); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("history on disk after two attempts = %v, want [1 2]", got)
	}
	// Hold and release rewrite the record while header and history are on
	// disk only.
	if err := tq.Hold(id); err != nil {
		t.Fatal(err)
	}
	if err := tq.Release(id); err != nil {
		t.Fatal(err)
	}
	rec := onDisk(t, tq.Queue, id)
	if string(rec.Header) != testHeader || !slices.Equal(attemptNumbers(rec.History), []int{1, 2}) {
		t.Fatalf("record on disk after hold and release: header %q, history %v; want %q, [1 2]", rec.Header, attemptNumbers(rec.History), testHeader)
	}
	d, err := tq.Show(id)
	if err != nil || !strings.HasPrefix(d.Header, testHeader+"From: alice@example.com\r\n") || !slices.Equal(attemptNumbers(d.History), []int{1, 2}) {
		t.Errorf("Show = header %q, history %v, %v; want the prepended header, then the message's, and attempts [1 2]", d.Header, attemptNumbers(d.History), err)
	}
	if l := tq.List(); len(l) != 1 || l[0].Size != int64(len(testHeader)+len(testBody)) {
		t.Errorf("List = %+v, want one message of %d bytes", l, len(testHeader)+len(testBody))
	}

	fail.Store(false)
	tq.clock.Set(tq.clock.Now().Add(5 * time.Minute))
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	got := tq.deliv.deliveries(id)
	last := got[len(got)-1]
	if want := testHeader + testBody; len(got) != 3 || string(last.Data) != want || last.Size != int64(len(want)) {
		t.Errorf("%d deliveries, the last %q (size %d); want 3, the last %q (size %d)", len(got), last.Data, last.Size, want, len(want))
	}
}

// After a restart no message's header is in memory until it is attempted:
// delivery reads it from the record, and so does a bounce's copy of the
// original header.
func TestRecovery_HeaderReadWhenNeeded(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = func(d *Delivery, rcpt string) Result {
		if rcpt == "gone@example.net" {
			return permFail("550 5.1.1 no such user")
		}
		return Result{Reply: "250 2.0.0 Ok"}
	}
	ok := commit(t, tq.Queue, testEnvelope("bob@example.net"), testHeader, testBody)
	bounce := commit(t, tq.Queue, testEnvelope("gone@example.net"), testHeader, testBody)
	tq.reopen(t)
	for _, id := range []ID{ok, bounce} {
		if h, n, _ := inMemory(t, tq.Queue, id); h != nil || n != int64(len(testHeader)) {
			t.Errorf("%s after recovery holds header %q (length %d) in memory, want none (length %d)", id, h, n, len(testHeader))
		}
	}
	tq.run(t)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(ok))
	if got := tq.deliv.deliveries(ok); len(got) != 1 || !bytes.Equal(got[0].Data, []byte(testHeader+testBody)) {
		t.Errorf("deliveries of %s = %+v, want one of the prepended header and the message", ok, got)
	}
	queued := tq.log.wait(t, 1, mlog.DSNQueued, mlog.QueueID, string(bounce))[0]
	dsnID := ID(queued.attrs[mlog.DSNID])
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(dsnID))
	dsn := tq.deliv.deliveries(dsnID)
	if len(dsn) != 1 {
		t.Fatalf("DSN deliveries = %+v, want one", dsn)
	}
	_, parts := parseDSN(t, dsn[0].Data)
	if !strings.HasPrefix(string(parts[2].body), testHeader) {
		t.Errorf("DSN headers part = %q, want it to start with the prepended header %q", parts[2].body, testHeader)
	}
}

// A record whose history cannot be decoded is set aside at recovery, like
// any record decodeRecord refuses: loaded cold, it would fail at every
// attempt (its header is read from the same record) and never leave the
// queue.
func TestRecovery_SetsAsideBadHistory(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.Queue.Close()
	path := tq.spool.recordPath(id)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["history"] = []any{map[string]any{"time": "yesterday"}}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tq.reopen(t)
	if l := tq.List(); len(l) != 0 {
		t.Errorf("List after recovery = %v, want the record set aside", l)
	}
	if _, err := os.Stat(filepath.Join(tq.opts.Dir, corruptDir, string(id)+extRecord)); err != nil {
		t.Errorf("record with a bad history not set aside: %v", err)
	}
}

// A rewrite whose directory fsync fails has still renamed the new record
// into place, history and all: the next rewrite must not add the same
// attempts again.
func TestDeferredMessage_FailedDirectorySyncKeepsHistoryOnce(t *testing.T) {
	t.Parallel()
	ffs := &faultFS{op: "fsync directory"}
	tq := newTestQueue(t, func(o *Options) {
		ffs.dir = o.Dir
		o.FS = ffs
	})
	tq.deliv.outcome = func(d *Delivery, rcpt string) Result { return tempFail("451 4.7.1 try later") }
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Deferred, mlog.QueueID, string(id))
	ffs.arm()
	tq.clock.Set(tq.clock.Now().Add(time.Minute))
	tq.log.wait(t, 1, mlog.SpoolError, mlog.QueueID, string(id))
	tq.log.wait(t, 2, mlog.Deferred, mlog.QueueID, string(id))
	if err := tq.Hold(id); err != nil {
		t.Fatal(err)
	}
	if got := attemptNumbers(onDisk(t, tq.Queue, id).History); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("history on disk after two attempts and a hold = %v, want [1 2]", got)
	}
	d, err := tq.Show(id)
	if err != nil || !slices.Equal(attemptNumbers(d.History), []int{1, 2}) {
		t.Errorf("Show = history %v, %v; want [1 2]", attemptNumbers(d.History), err)
	}
}
