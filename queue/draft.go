package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Draft is a message being received. The session creates it with
// [Queue.Create] (so the queue ID can go into the Received header), streams
// the data with Write, and ends with exactly one of Commit or Abort. A
// Draft is not safe for concurrent use; different Drafts are independent.
type Draft struct {
	q   *Queue
	id  ID
	tmp string // ID.data.tmp
	f   File
	// recycled is set when f is a spare: bytes beyond size are an old
	// message's, cut off before the fsync.
	recycled bool
	w        *bufio.Writer
	size     int64
	err      error // the first write error; sticky
	done     bool  // committed or aborted
}

// draftBuffer batches the small writes a DATA reader produces (often one
// line each) into fewer write(2) calls.
const draftBuffer = 64 << 10

// Create starts a message: it allocates a queue ID and creates the
// temporary data file. Errors wrap [ErrStorage].
func (q *Queue) Create() (*Draft, error) {
	id := q.ids.next(q.now())
	tmp := q.spool.dataPath(id) + extTmp
	// A queue ID collision fails here (an existing name is never reused)
	// instead of mixing messages.
	f, recycled, err := q.spool.create(tmp)
	if err != nil {
		return nil, storageErr("create", tmp, err)
	}
	return &Draft{q: q, id: id, tmp: tmp, f: f, recycled: recycled, w: bufio.NewWriterSize(f, draftBuffer)}, nil
}

// ID returns the message's queue ID, fixed from [Queue.Create] on.
func (d *Draft) ID() ID { return d.id }

// Write appends message data (the bytes as received, CRLF line endings,
// dot-unstuffed). Errors wrap [ErrStorage] and are sticky: once Write
// fails, Commit fails too.
func (d *Draft) Write(p []byte) (int, error) {
	if d.done {
		return 0, fmt.Errorf("queue: write %s: draft already committed or aborted", d.id)
	}
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.w.Write(p)
	d.size += int64(n)
	if err != nil {
		d.err = storageErr("write", d.tmp, err)
		return n, d.err
	}
	return n, nil
}

// Commit makes the message durable and schedules it. header is prepended
// at delivery (our Received line and DKIM-Signature, CRLF-terminated).
//
// When Commit returns nil the message survives a crash and the session may
// answer 250: the data file has been fsynced and renamed, the envelope
// record written, fsynced and renamed (the commit point), and the spool
// directory fsynced (shared with concurrent commits; see groupSync). Any
// failure wraps [ErrStorage] (except an invalid envelope, a caller bug)
// and leaves nothing behind.
func (d *Draft) Commit(env Envelope, header []byte) error {
	if d.done {
		return fmt.Errorf("queue: commit %s: draft already committed or aborted", d.id)
	}
	if err := checkEnvelope(env); err != nil {
		d.Abort()
		return fmt.Errorf("queue: commit %s: %w", d.id, err)
	}
	if d.err != nil {
		d.Abort()
		return d.err
	}
	d.done = true
	q, s := d.q, d.q.spool
	now := q.now()
	rec := &record{
		Version:    recordVersion,
		ID:         d.id,
		From:       env.From,
		Recipients: make([]Recipient, len(env.Recipients)),
		UTF8:       env.UTF8,
		EightBit:   env.EightBit,
		Origin:     env.Origin,
		Arrival:    now,
		Header:     bytes.Clone(header),
		headerLen:  int64(len(header)),
		DataSize:   d.size,
	}
	for i, a := range env.Recipients {
		rec.Recipients[i] = Recipient{Address: a, State: StatePending}
	}
	if err := d.persist(rec); err != nil {
		// Best effort: a file we fail to remove here is removed by the
		// next recovery, which treats data without a record as garbage
		// and never delivers a record without its data.
		s.fs.Remove(d.tmp)
		s.fs.Remove(s.dataPath(d.id))
		s.fs.Remove(s.recordPath(d.id) + extTmp)
		s.fs.Remove(s.recordPath(d.id))
		return err
	}
	q.add(&message{id: d.id, rec: rec, index: -1})
	return nil
}

// persist runs the durable steps of Commit in order.
func (d *Draft) persist(rec *record) error {
	s := d.q.spool
	if err := d.w.Flush(); err != nil {
		d.f.Close()
		return storageErr("write", d.tmp, err)
	}
	if d.recycled {
		if err := d.f.Truncate(d.size); err != nil {
			d.f.Close()
			return storageErr("truncate", d.tmp, err)
		}
	}
	if err := d.f.Sync(); err != nil {
		d.f.Close()
		return storageErr("fsync", d.tmp, err)
	}
	if err := d.f.Close(); err != nil {
		return storageErr("close", d.tmp, err)
	}
	if err := s.fs.Rename(d.tmp, s.dataPath(d.id)); err != nil {
		return storageErr("rename", d.tmp, err)
	}
	b, err := rec.encode()
	if err != nil {
		return err
	}
	if err := s.writeAtomic(s.recordPath(d.id), b); err != nil {
		return err
	}
	return s.sync.Sync()
}

// Abort discards the message and its temporary file. It may be called any
// number of times, and after Commit (successful or not) it does nothing, so
// a session can always defer it.
func (d *Draft) Abort() {
	if d.done {
		return
	}
	d.done = true
	d.f.Close()
	d.q.spool.fs.Remove(d.tmp)
}

// checkEnvelope refuses envelopes the queue cannot keep safely. The
// session validates addresses properly (relay/address); this only guards
// the invariants the queue relies on: at least one recipient, no
// duplicates (results are matched by address), and no control characters,
// which would let an address inject header lines into a DSN.
func checkEnvelope(env Envelope) error {
	if len(env.Recipients) == 0 {
		return errors.New("no recipients")
	}
	if hasControl(env.From) {
		return fmt.Errorf("control character in sender %q", env.From)
	}
	seen := make(map[string]bool, len(env.Recipients))
	for _, r := range env.Recipients {
		switch {
		case r == "":
			return errors.New("empty recipient")
		case hasControl(r):
			return fmt.Errorf("control character in recipient %q", r)
		case seen[r]:
			return fmt.Errorf("duplicate recipient %q", r)
		}
		seen[r] = true
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// messageReader is what Delivery.Open returns: the prepended header, then
// the data file.
type messageReader struct {
	io.Reader
	close  func() error
	closed bool
}

func newMessageReader(header []byte, f File, close func() error) *messageReader {
	return &messageReader{Reader: io.MultiReader(bytes.NewReader(header), f), close: close}
}

// Close closes the data file; later calls do nothing.
func (r *messageReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.close()
}
