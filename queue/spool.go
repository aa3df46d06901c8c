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
	corruptDir = "corrupt"
	lockName   = "lock"
)

// spool is the on-disk half of the queue: file names and durable writes.
type spool struct {
	dir  string
	fs   FS
	sync *groupSync
}

func newSpool(dir string, fsys FS) *spool {
	s := &spool{dir: dir, fs: fsys}
	s.sync = &groupSync{fsync: s.fsyncDir}
	return s
}

func (s *spool) dataPath(id ID) string   { return filepath.Join(s.dir, string(id)+extData) }
func (s *spool) recordPath(id ID) string { return filepath.Join(s.dir, string(id)+extRecord) }

// writeAtomic writes b to final+".tmp", fsyncs it and renames it to final.
// The caller makes the rename durable with a directory fsync. On error the
// temporary file is removed and the error wraps [ErrStorage].
func (s *spool) writeAtomic(final string, b []byte) error {
	tmp := final + extTmp
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
	b, err := r.encode()
	if err != nil {
		return err
	}
	if err := s.writeAtomic(s.recordPath(r.ID), b); err != nil {
		return err
	}
	return s.sync.Sync()
}

// removeMessage deletes a message's files: the record first, because it is
// the commit point. Once the record is gone the message is gone; a data
// file left behind (its removal failed) is garbage to the next recovery,
// so only the record's removal can fail this.
func (s *spool) removeMessage(id ID) error {
	if err := s.fs.Remove(s.recordPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return storageErr("remove", s.recordPath(id), err)
	}
	s.fs.Remove(s.dataPath(id))
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
