package queue

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smarthost/queue/mlog"
)

func TestCommit_DeliversHeaderThenDataAndRemoves(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	id := commit(t, tq.Queue, testEnvelope("bob@example.net", "carol@example.net"), testHeader, testBody)
	if len(id) > maxIDLen || !id.Valid() {
		t.Fatalf("queue ID %q is not a valid short ID", id)
	}
	tq.run(t)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))

	got := tq.deliv.deliveries(id)
	if len(got) != 1 {
		t.Fatalf("deliveries of %s = %d, want 1", id, len(got))
	}
	want := testHeader + testBody
	if string(got[0].Data) != want || got[0].Size != int64(len(want)) {
		t.Errorf("delivered %q (size %d), want %q (size %d)", got[0].Data, got[0].Size, want, len(want))
	}
	if !reflect.DeepEqual(got[0].Recipients, []string{"bob@example.net", "carol@example.net"}) || got[0].Attempt != 1 {
		t.Errorf("delivery recipients %q attempt %d, want both recipients, attempt 1", got[0].Recipients, got[0].Attempt)
	}
	if n := len(tq.log.match(mlog.Delivered, mlog.QueueID, string(id))); n != 2 {
		t.Errorf("delivered events = %d, want 2 (one per recipient)", n)
	}
	d := tq.log.match(mlog.Delivered, mlog.Rcpt, "carol@example.net")[0]
	wantAttrs := map[string]string{mlog.QueueID: string(id), mlog.NextHop: "smtp:[sink.example]:25", mlog.MX: "192.0.2.1:25",
		mlog.Code: "250", mlog.TLS: "TLSv1.3", mlog.Attempt: "1", mlog.Enhanced: "2.0.0"}
	for k, v := range wantAttrs {
		if d.attrs[k] != v {
			t.Errorf("delivered event %s = %q, want %q", k, d.attrs[k], v)
		}
	}
	if files := spoolFiles(t, tq.opts.Dir); len(files) != 0 {
		t.Errorf("spool after delivery holds %q, want nothing", files)
	}
	if l := tq.List(); len(l) != 0 {
		t.Errorf("List after delivery = %v, want empty", l)
	}
}

func TestCommit_RejectsBadEnvelopeAndLeavesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  Envelope
	}{
		{"no recipients", Envelope{From: "a@example.com"}},
		{"duplicate recipient", Envelope{From: "a@example.com", Recipients: []string{"b@example.net", "b@example.net"}}},
		{"empty recipient", Envelope{From: "a@example.com", Recipients: []string{""}}},
		{"CRLF in sender", Envelope{From: "a@example.com\r\nBcc: x@example.net", Recipients: []string{"b@example.net"}}},
		{"LF in recipient", Envelope{From: "a@example.com", Recipients: []string{"b@example.net\nX: y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tq := newTestQueue(t, nil)
			d, err := tq.Create()
			if err != nil {
				t.Fatal(err)
			}
			d.Write([]byte(testBody))
			err = d.Commit(tt.env, nil)
			if err == nil || errors.Is(err, ErrStorage) {
				t.Errorf("Commit(%+v) = %v, want an envelope error (not ErrStorage)", tt.env, err)
			}
			if files := spoolFiles(t, tq.opts.Dir); len(files) != 0 {
				t.Errorf("spool after rejected commit holds %q, want nothing", files)
			}
		})
	}
}

func TestAbort_RemovesTemporaryAndIsIdempotent(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	d, err := tq.Create()
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte(testBody))
	if files := spoolFiles(t, tq.opts.Dir); !reflect.DeepEqual(files, []string{string(d.ID()) + ".data.tmp"}) {
		t.Errorf("spool while writing = %q, want only the temporary data file", files)
	}
	d.Abort()
	d.Abort()
	if files := spoolFiles(t, tq.opts.Dir); len(files) != 0 {
		t.Errorf("spool after Abort = %q, want nothing", files)
	}
	if err := d.Commit(testEnvelope(), nil); err == nil {
		t.Errorf("Commit after Abort = nil, want an error")
	}

	// Abort after a successful Commit does nothing.
	d2, _ := tq.Create()
	d2.Write([]byte(testBody))
	if err := d2.Commit(testEnvelope(), nil); err != nil {
		t.Fatal(err)
	}
	d2.Abort()
	if l := tq.List(); len(l) != 1 || l[0].ID != d2.ID() {
		t.Errorf("List after Commit+Abort = %v, want the committed message", l)
	}
}

func TestOpen_RecoversSpool(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	good := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	short := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	noData := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	garbled := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.Queue.Close()

	dir := tq.opts.Dir
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("0000000000ORPHN.data", "data without a record")
	write("0000000000TEMP1.data.tmp", "half-written data")
	write("0000000000TEMP2.env.tmp", "{half-written record")
	write(string(short)+".data", "truncated")
	write(string(garbled)+".env", "{not json")
	os.Remove(filepath.Join(dir, string(noData)+".data"))

	tq.reopen(t)
	if l := tq.List(); len(l) != 1 || l[0].ID != good {
		t.Errorf("List after recovery = %v, want only %s", l, good)
	}
	if files := spoolFiles(t, dir); !reflect.DeepEqual(files, []string{string(good) + ".data", string(good) + ".env"}) {
		t.Errorf("spool after recovery = %q, want only %s's files", files, good)
	}
	for _, id := range []ID{short, noData, garbled} {
		if _, err := os.Stat(filepath.Join(dir, corruptDir, string(id)+".env")); err != nil {
			t.Errorf("corrupt message %s not set aside: %v", id, err)
		}
		if len(tq.log.match(mlog.Corrupt, mlog.QueueID, string(id))) != 1 {
			t.Errorf("no %q event for %s", mlog.Corrupt, id)
		}
	}
	if e := tq.log.match(mlog.Recovered); len(e) != 2 || e[1].attrs[mlog.Count] != "1" {
		t.Errorf("recovered events = %v, want a second one with count 1", e)
	}

	// The surviving message is delivered intact.
	tq.run(t)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(good))
	if got := tq.deliv.deliveries(good); len(got) != 1 || string(got[0].Data) != testHeader+testBody {
		t.Errorf("deliveries of %s after recovery = %v, want one with the original bytes", good, got)
	}
	if n := len(tq.deliv.deliveries("")); n != 1 {
		t.Errorf("deliveries after recovery = %d, want 1", n)
	}
}

func TestOpen_RefusesSpoolInUse(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	_, err := Open(tq.opts)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open on %s = %v, want an in-use error", tq.opts.Dir, err)
	}
}

func TestOpen_RejectsBadOptions(t *testing.T) {
	t.Parallel()
	valid := func() Options {
		return Options{Dir: t.TempDir(), Hostname: "h.example", Retry: []time.Duration{time.Minute}, Concurrency: 1, Deliverer: &fakeDeliverer{}}
	}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no dir", func(o *Options) { o.Dir = "" }, "spool directory"},
		{"no hostname", func(o *Options) { o.Hostname = "" }, "hostname"},
		{"no retry", func(o *Options) { o.Retry = nil }, "retry"},
		{"zero retry step", func(o *Options) { o.Retry = []time.Duration{time.Minute, 0} }, "retry step 1"},
		{"no concurrency", func(o *Options) { o.Concurrency = 0 }, "concurrency"},
		{"no deliverer", func(o *Options) { o.Deliverer = nil }, "deliverer"},
		{"negative lifetime", func(o *Options) { o.MaxLifetime = -time.Second }, "lifetime"},
	}
	for _, tt := range tests {
		o := valid()
		tt.edit(&o)
		q, err := Open(o)
		if err == nil {
			q.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Open = %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestDeliveryOpen_StreamsFromDisk(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, larger than the write buffer
	id := commit(t, tq.Queue, testEnvelope(), testHeader, body)
	r, err := tq.openData(id, []byte(testHeader))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(r)
	r.Close()
	if got.String() != testHeader+body {
		t.Errorf("openData(%s) returned %d bytes, want the %d bytes committed", id, got.Len(), len(testHeader+body))
	}
}
