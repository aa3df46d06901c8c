package queue

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smarthost/queue/mlog"
)

// inMemory returns what the queue holds in memory of a message's header
// and its length.
func inMemory(t *testing.T, q *Queue, id ID) (header []byte, length int64) {
	t.Helper()
	q.mu.Lock()
	m := q.msgs[id]
	q.mu.Unlock()
	if m == nil {
		t.Fatalf("message %s is not in the queue", id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec.Header, m.rec.headerLen
}

// onDisk returns the header in a message's record file.
func onDisk(t *testing.T, q *Queue, id ID) []byte {
	t.Helper()
	b, err := readFile(q.spool.fs, q.spool.recordPath(id))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Header
}

// A message waiting for its retry keeps its prepended header (Received,
// DKIM-Signature: most of an envelope's bytes) on disk only, so a long
// queue costs memory by its envelopes; every rewrite of its record keeps
// the header, and the retry delivers it byte for byte.
func TestDeferredMessage_HeaderWaitsOnDisk(t *testing.T) {
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

	if h, n := inMemory(t, tq.Queue, id); h != nil || n != int64(len(testHeader)) {
		t.Errorf("deferred message holds header %q (length %d) in memory, want none (length %d)", h, n, len(testHeader))
	}
	// Hold and release rewrite the record while the header is on disk only.
	if err := tq.Hold(id); err != nil {
		t.Fatal(err)
	}
	if err := tq.Release(id); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, tq.Queue, id); string(got) != testHeader {
		t.Fatalf("record on disk after hold and release has header %q, want %q", got, testHeader)
	}
	d, err := tq.Show(id)
	if err != nil || !strings.HasPrefix(d.Header, testHeader+"From: alice@example.com\r\n") {
		t.Errorf("Show = %q, %v; want the prepended header, then the message's", d.Header, err)
	}
	if l := tq.List(); len(l) != 1 || l[0].Size != int64(len(testHeader)+len(testBody)) {
		t.Errorf("List = %+v, want one message of %d bytes", l, len(testHeader)+len(testBody))
	}

	fail.Store(false)
	tq.clock.Set(tq.clock.Now().Add(2 * time.Minute))
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	got := tq.deliv.deliveries(id)
	last := got[len(got)-1]
	if want := testHeader + testBody; string(last.Data) != want || last.Size != int64(len(want)) {
		t.Errorf("retry delivered %q (size %d), want %q (size %d)", last.Data, last.Size, want, len(want))
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
		if h, n := inMemory(t, tq.Queue, id); h != nil || n != int64(len(testHeader)) {
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
