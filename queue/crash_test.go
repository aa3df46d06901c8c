package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"smarthost/queue/mlog"
)

// errInjected is the failure faultFS injects.
var errInjected = errors.New("injected I/O error")

// faultFS wraps the real file system and, once armed, fails the first
// matching step of a durable write. In crash mode every later change fails
// too, so the disk is left exactly as it was when the step failed, as if
// the process had died there (no clean-up reaches the disk).
type faultFS struct {
	osFS
	dir    string
	op     string // "create", "write", "fsync", "rename", "fsync directory"
	suffix string // which files: ".data.tmp", ".env.tmp"; "" for the directory
	crash  bool

	mu    sync.Mutex
	armed bool
	fired bool
}

func (f *faultFS) arm() {
	f.mu.Lock()
	f.armed = true
	f.mu.Unlock()
}

// fail reports whether the step op on name fails.
func (f *faultFS) fail(op, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired && f.crash {
		return true
	}
	if !f.armed || f.fired || op != f.op {
		return false
	}
	if f.suffix == "" && name != f.dir || f.suffix != "" && !strings.HasSuffix(name, f.suffix) {
		return false
	}
	f.fired = true
	return true
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 && f.fail("create", name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errInjected}
	}
	file, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if f.fail("rename", oldpath) {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errInjected}
	}
	return f.osFS.Rename(oldpath, newpath)
}

func (f *faultFS) Link(oldpath, newpath string) error {
	if f.fail("link", newpath) {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: errInjected}
	}
	return f.osFS.Link(oldpath, newpath)
}

func (f *faultFS) Remove(name string) error {
	if f.fail("remove", name) {
		return errInjected
	}
	return f.osFS.Remove(name)
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.fail("write", f.name) {
		return 0, errInjected
	}
	return f.File.Write(p)
}

func (f *faultFile) Truncate(size int64) error {
	if f.fs.fail("truncate", f.name) {
		return errInjected
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Sync() error {
	op := "fsync"
	if f.name == f.fs.dir {
		op = "fsync directory"
	}
	if f.fs.fail(op, f.name) {
		return errInjected
	}
	return f.File.Sync()
}

// The steps of a commit, in order, each made to fail in turn. A file is
// created, or made from a spare (linked, then truncated after the write);
// stepApplies says which steps a spool with or without spares takes.
var commitSteps = []struct{ op, suffix string }{
	{"create", extData + extTmp},
	{"write", extData + extTmp},
	{"truncate", extData + extTmp},
	{"fsync", extData + extTmp},
	{"rename", extData + extTmp},
	{"create", extRecord + extTmp},
	{"write", extRecord + extTmp},
	{"truncate", extRecord + extTmp},
	{"fsync", extRecord + extTmp},
	{"rename", extRecord + extTmp},
	{"fsync directory", ""},
}

// stepApplies reports whether a commit takes the step: files from spares
// are not created, new files are not truncated.
func stepApplies(op string, spares bool) bool {
	return !(spares && op == "create" || !spares && op == "truncate")
}

// seedSpares puts n spare files of size bytes of garbage into the spool
// directory before it is opened, as a previous run's removals leave them.
func seedSpares(t *testing.T, dir string, n, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := strings.Repeat("SPARE GARBAGE\r\n", size/15+1)[:size]
	for i := range n {
		name := filepath.Join(dir, fmt.Sprintf("SEED%d%s%s", i, extData, extSpare))
		if err := os.WriteFile(name, []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommit_FailingStepLosesNothingCommitted(t *testing.T) {
	t.Parallel()
	for _, spares := range []bool{false, true} {
		for _, step := range commitSteps {
			if !stepApplies(step.op, spares) {
				continue
			}
			for _, crash := range []bool{false, true} {
				name := step.op + " " + step.suffix
				if spares {
					name += " from spares"
				}
				if crash {
					name += " then crash"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					var ffs *faultFS
					tq := newTestQueue(t, func(o *Options) {
						if spares {
							// Larger than the failing message, so that
							// anything not cut off would show.
							seedSpares(t, o.Dir, 4, 200<<10)
						}
						ffs = &faultFS{dir: o.Dir, op: step.op, suffix: step.suffix, crash: crash}
						o.FS = ffs
					})
					good := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)

					ffs.arm()
					// A body larger than the draft buffer, so data is written
					// both by Write and by Commit's flush.
					body := testBody + strings.Repeat("failing message\r\n", 8000)
					var failed ID
					err := func() error {
						d, err := tq.Create()
						if err != nil {
							return err
						}
						failed = d.ID()
						defer d.Abort()
						if _, err := d.Write([]byte(body)); err != nil {
							return err
						}
						return d.Commit(testEnvelope(), []byte(testHeader))
					}()
					if !errors.Is(err, ErrStorage) || !errors.Is(err, errInjected) {
						t.Fatalf("storing with %s failing = %v, want an error wrapping ErrStorage and the cause", name, err)
					}
					files := spoolFiles(t, tq.opts.Dir)
					if !crash {
						// Clean failure: nothing of the failed message is left.
						for _, f := range files {
							if failed != "" && strings.HasPrefix(f, string(failed)) {
								t.Errorf("after a failed commit the spool holds %s", f)
							}
						}
					}
					if l := tq.List(); len(l) != 1 || l[0].ID != good {
						t.Errorf("List after the failed commit = %v, want only %s", l, good)
					}

					// Restart on the real file system, as after a crash.
					tq.opts.FS = nil
					tq.reopen(t)
					if files := spoolFiles(t, tq.opts.Dir); hasTemporaries(files) {
						t.Errorf("temporaries survived recovery: %q", files)
					}
					want := map[ID]string{good: testHeader + testBody}
					for _, s := range tq.List() {
						switch s.ID {
						case good:
						case failed:
							// Only possible when the crash came after the
							// commit point (the directory fsync); then the
							// message is whole and may be delivered.
							if !crash || step.op != "fsync directory" {
								t.Errorf("message %s whose commit failed at %s was recovered", failed, name)
							}
							want[failed] = testHeader + body
						default:
							t.Errorf("unexpected message %s after recovery", s.ID)
						}
					}
					tq.run(t)
					for id, data := range want {
						tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
						got := tq.deliv.deliveries(id)
						if len(got) != 1 || string(got[0].Data) != data {
							t.Errorf("message %s: %d deliveries, want 1 with the committed bytes", id, len(got))
						}
					}
					if n := len(tq.deliv.deliveries("")); n != len(want) {
						t.Errorf("deliveries = %d, want %d", n, len(want))
					}
				})
			}
		}
	}
}

func TestRecordUpdate_FailureKeepsOldState(t *testing.T) {
	t.Parallel()
	for _, step := range []struct {
		op, suffix string
		spares     bool
	}{
		{"create", extRecord + extTmp, false},
		{"write", extRecord + extTmp, false},
		{"fsync", extRecord + extTmp, false},
		{"rename", extRecord + extTmp, false},
		{"fsync directory", "", false},
		{"write", extRecord + extTmp, true},
		{"truncate", extRecord + extTmp, true},
		{"fsync", extRecord + extTmp, true},
		{"rename", extRecord + extTmp, true},
	} {
		name := step.op
		if step.spares {
			name += " from spares"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ffs *faultFS
			tq := newTestQueue(t, func(o *Options) {
				if step.spares {
					seedSpares(t, o.Dir, 4, 4<<10)
				}
				ffs = &faultFS{dir: o.Dir, op: step.op, suffix: step.suffix}
				o.FS = ffs
			})
			id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
			ffs.arm()
			if err := tq.Hold(id); !errors.Is(err, ErrStorage) {
				t.Fatalf("Hold with %s failing = %v, want ErrStorage", step.op, err)
			}
			if l := tq.List(); len(l) != 1 || l[0].Held {
				t.Errorf("after a failed Hold: %+v, want the message not held", l)
			}
			if hasTemporaries(spoolFiles(t, tq.opts.Dir)) {
				t.Errorf("temporaries left: %q", spoolFiles(t, tq.opts.Dir))
			}
			tq.opts.FS = nil
			tq.reopen(t)
			if l := tq.List(); len(l) != 1 || l[0].Held {
				t.Errorf("after a failed Hold and a restart: %+v, want the message not held", l)
			}
		})
	}
}

func TestCommit_ErrorMatchesCause(t *testing.T) {
	t.Parallel()
	err := storageErr("write", "/spool/X.data.tmp", syscall.ENOSPC)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("storage error %v does not match both ErrStorage and ENOSPC", err)
	}
	if want := "queue: write /spool/X.data.tmp: no space left on device"; err.Error() != want {
		t.Errorf("storage error = %q, want %q", err.Error(), want)
	}
}
