package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Spool layout: every file of a message lives directly in the spool
// directory, so one directory fsync makes all of a commit's renames
// durable.
//
//	ID.data.tmp  message data being received (Draft)
//	ID.data      message data, complete and fsynced
//	ID.env.tmp   envelope record being written
//	ID.env       envelope record; its rename is the commit point
//	NAME.spare   a removed message's file, kept to be reused (see below)
//	corrupt/     files recovery could not use, kept for a human (as
//	             Postfix keeps its "corrupt" queue)
//	lock         flock(2)ed while a Queue has the spool open
//
// Postfix hashes its queue directories (hash_queue_depth) for file systems
// with linear directory lookups; ext4 and XFS index directories, so one
// flat directory is enough at the sizes this relay handles.
const (
	extData    = ".data"
	extRecord  = ".env"
	extTmp     = ".tmp"
	extSpare   = ".spare"
	corruptDir = "corrupt"
	lockName   = "lock"
)

// Spare files. When a message leaves the queue its files are not deleted
// but renamed to spares (up to maxSpares of them, each of at most
// maxSpareSize bytes), and new messages' files are made from spares: linked
// to the new name, overwritten from the start, truncated and fsynced.
// Creating and deleting a file per message is what made commits slow:
// every new file costs an inode allocation (on ext4 without a journal a
// search past every recently deleted inode) and its first fsync writes the
// directory too, so concurrent commits queue up behind each other's
// directory writes; an old file's fsync writes only its own blocks and
// inode. PostgreSQL recycles its WAL segment files for the same reason.
// Spares hold no message (their content is overwritten before the file is
// renamed to a committed name), so recovery keeps them as spares, and the
// disk space they hold is bounded by maxSpares × maxSpareSize.
const (
	maxSpares    = 128
	maxSpareSize = 128 << 10
)

// spool is the on-disk half of the queue: file names and durable writes.
type spool struct {
	dir  string
	fs   FS
	sync *groupSync

	spareMu sync.Mutex
	spares  []string // paths of spare files, most recently added last

	// readerMu makes opening a data file for reading and retiring it
	// mutually exclusive, so that a data file still open for reading is
	// deleted (its reader keeps the old bytes) rather than made a spare
	// and overwritten under its reader.
	readerMu sync.Mutex
	readers  map[ID]int // open readers per message
}

func newSpool(dir string, fsys FS) *spool {
	s := &spool{dir: dir, fs: fsys, readers: map[ID]int{}}
	s.sync = &groupSync{fsync: s.fsyncDir}
	return s
}

// openData opens a message's data file for reading; call closeData when
// done with it.
func (s *spool) openData(id ID) (File, error) {
	s.readerMu.Lock()
	defer s.readerMu.Unlock()
	f, err := s.fs.OpenFile(s.dataPath(id), os.O_RDONLY, 0)
	if err == nil {
		s.readers[id]++
	}
	return f, err
}

func (s *spool) closeData(id ID, f File) error {
	err := f.Close()
	s.readerMu.Lock()
	if s.readers[id]--; s.readers[id] <= 0 {
		delete(s.readers, id)
	}
	s.readerMu.Unlock()
	return err
}

// create opens a new file for writing at name, which must not exist:
// a spare made to name when there is one, else a new file. recycled
// reports a spare, whose old content the caller must overwrite and then
// truncate to its own length before it fsyncs. Errors are the new file's:
// a spare that cannot be used is dropped and a new file made instead.
func (s *spool) create(name string) (f File, recycled bool, err error) {
	for spare := s.takeSpare(); spare != ""; spare = s.takeSpare() {
		// Link fails if name exists, as O_EXCL does for a new file.
		err := s.fs.Link(spare, name)
		if errors.Is(err, fs.ErrExist) {
			s.addSpare(spare)
			break
		}
		s.fs.Remove(spare)
		if err != nil {
			continue
		}
		if f, err := s.fs.OpenFile(name, os.O_WRONLY, 0); err == nil {
			return f, true, nil
		}
		s.fs.Remove(name)
	}
	f, err = s.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	return f, false, err
}

func (s *spool) takeSpare() string {
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	n := len(s.spares)
	if n == 0 {
		return ""
	}
	spare := s.spares[n-1]
	s.spares = s.spares[:n-1]
	return spare
}

// retire takes a file of a removed message out of the spool: it becomes
// a spare, or is deleted when it is too big or there are spares enough.
// Either way name is gone from the directory (or the error says why not);
// as with a deletion, a directory fsync makes that durable.
func (s *spool) retire(name string, size int64) error {
	s.spareMu.Lock()
	keep := size <= maxSpareSize && len(s.spares) < maxSpares
	s.spareMu.Unlock()
	if !keep {
		return s.fs.Remove(name)
	}
	spare := name + extSpare
	if err := s.fs.Rename(name, spare); err != nil {
		return err
	}
	s.addSpare(spare)
	return nil
}

// addSpare offers a spare file for reuse, deleting it when there are
// enough.
func (s *spool) addSpare(path string) {
	s.spareMu.Lock()
	full := len(s.spares) >= maxSpares
	if !full {
		s.spares = append(s.spares, path)
	}
	s.spareMu.Unlock()
	if full {
		s.fs.Remove(path)
	}
}

func (s *spool) dataPath(id ID) string   { return filepath.Join(s.dir, string(id)+extData) }
func (s *spool) recordPath(id ID) string { return filepath.Join(s.dir, string(id)+extRecord) }

// writeAtomic writes b to final+".tmp", fsyncs it and renames it to final.
// The caller makes the rename durable with a directory fsync. On error the
// temporary file is removed and the error wraps [ErrStorage].
func (s *spool) writeAtomic(final string, b []byte) error {
	tmp := final + extTmp
	f, recycled, err := s.create(tmp)
	if errors.Is(err, fs.ErrExist) {
		// Left by an earlier write of this record that failed and could
		// not clean up: garbage.
		s.fs.Remove(tmp)
		f, recycled, err = s.create(tmp)
	}
	if err != nil {
		return storageErr("create", tmp, err)
	}
	fail := func(op string, err error) error {
		f.Close()
		s.fs.Remove(tmp)
		return storageErr(op, tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		return fail("write", err)
	}
	if recycled {
		if err := f.Truncate(int64(len(b))); err != nil {
			return fail("truncate", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		s.fs.Remove(tmp)
		return storageErr("close", tmp, err)
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		s.fs.Remove(tmp)
		return storageErr("rename", tmp, err)
	}
	return nil
}

// writeRecord replaces r's envelope record durably: temporary file,
// fsync, rename, directory fsync. Readers see the old or the new record,
// never a mix.
func (s *spool) writeRecord(r *record) error {
	full := r
	if r.cold {
		// The new record carries the old one's header and history, and
		// the history added since.
		c, err := s.warm(r)
		if err != nil {
			return err
		}
		full = c
	}
	b, err := full.encode()
	if err != nil {
		return err
	}
	if err := s.writeAtomic(s.recordPath(r.ID), b); err != nil {
		return err
	}
	if r.cold {
		// In the file now, even if the directory fsync fails: the next
		// rewrite reads them from there and must not add them again.
		r.History = nil
	}
	return s.sync.Sync()
}

// warm returns a copy of a cold record with its header and whole history,
// read from its file.
func (s *spool) warm(r *record) (*record, error) {
	header, history, err := s.readCold(r.ID, r.headerLen)
	if err != nil {
		return nil, err
	}
	c := *r
	c.Header, c.History, c.cold = header, appendHistory(history, r.History...), false
	return &c, nil
}

// readCold reads what a cold record (record.cold) left on disk: the
// prepended header, whose length must be want, and the history.
func (s *spool) readCold(id ID, want int64) ([]byte, []Attempt, error) {
	path := s.recordPath(id)
	b, err := readFile(s.fs, path)
	if err != nil {
		return nil, nil, storageErr("read", path, err)
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, nil, storageErr("read", path, err)
	}
	if r.headerLen != want {
		return nil, nil, storageErr("read", path, fmt.Errorf("header has %d bytes, expected %d", r.headerLen, want))
	}
	return r.Header, r.History, nil
}

// removeMessage takes a message's files out of the spool (see retire):
// the record first, because it is the commit point. Once the record is
// gone the message is gone; a data file left behind (its removal failed)
// is garbage to the next recovery, so only the record's removal can fail
// this.
func (s *spool) removeMessage(id ID, dataSize int64) error {
	if err := s.retire(s.recordPath(id), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return storageErr("remove", s.recordPath(id), err)
	}
	s.readerMu.Lock()
	if s.readers[id] > 0 {
		s.fs.Remove(s.dataPath(id))
	} else {
		s.retire(s.dataPath(id), dataSize)
	}
	s.readerMu.Unlock()
	// Without this a power loss could bring the record back and the message
	// would be delivered twice; cheap, because it shares group commits.
	return s.sync.Sync()
}

// fsyncDir fsyncs the spool directory, making renames and removals in it
// durable (the step chasquid's safeio lacks; see mox moxio/syncdir.go).
func (s *spool) fsyncDir() error {
	f, err := s.fs.OpenFile(s.dir, os.O_RDONLY, 0)
	if err != nil {
		return storageErr("open directory", s.dir, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return storageErr("fsync directory", s.dir, err)
	}
	return nil
}

// groupSync shares directory fsyncs between concurrent callers (group
// commit). A caller's Sync returns only after an fsync that started after
// the call began has finished, so every rename it made before calling is
// durable; callers that arrive while an fsync runs share the next one.
// Under load this turns N commits' directory fsyncs into about two.
type groupSync struct {
	fsync func() error

	mu      sync.Mutex
	running bool       // a leader is running fsyncs
	next    *syncBatch // callers waiting for the fsync that has not started yet
}

type syncBatch struct {
	done chan struct{}
	err  error
}

// Sync returns when everything renamed in the directory before the call is
// durable, or the error of the fsync that should have made it so.
func (g *groupSync) Sync() error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &syncBatch{done: make(chan struct{})}
	}
	b := g.next
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.lead(b)
	}
	<-b.done
	return b.err
}

// lead runs fsyncs for waiting batches until its own batch is done, then
// hands any remaining batch to a new goroutine, so no caller waits for
// more than the fsync in progress and its own.
func (g *groupSync) lead(mine *syncBatch) {
	for {
		g.mu.Lock()
		b := g.next
		if b == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		if b != mine && isClosed(mine.done) {
			// Our batch is done and others are waiting: hand over.
			g.mu.Unlock()
			go g.lead(b)
			return
		}
		g.next = nil
		g.mu.Unlock()
		b.err = g.fsync()
		close(b.done)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// spoolLock is an exclusive flock(2) on the spool's lock file, so two
// processes never run a queue on one spool (Postfix's master.lock does the
// same job). The kernel releases it when the process dies.
type spoolLock struct{ f *os.File }

func lockSpool(dir string) (*spoolLock, error) {
	p := filepath.Join(dir, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: open lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue: spool %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("queue: lock %s: %w", p, err)
	}
	return &spoolLock{f: f}, nil
}

// release unlocks explicitly before closing: a child forked by another
// goroutine holds a copy of the descriptor until its exec, and a lock
// released only by close would last until then.
func (l *spoolLock) release() error {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	return l.f.Close()
}
