package greylist

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestState_SurvivesRestart: first attempt, restart, retry passes,
// restart, still known; and an expired triplet is dropped on Open.
func TestState_SurvivesRestart(t *testing.T) {
	t.Parallel()
	dir, clk := t.TempDir(), newClock()
	other := triplet("198.51.100.1", "x@sender.test", "bob@example.test")

	g := open(t, dir, clk)
	check(t, g, base, deferred(StatusNew, 5*time.Minute))
	check(t, g, other, deferred(StatusNew, 5*time.Minute))
	if err := g.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	clk.Add(5 * time.Minute)
	g = open(t, dir, clk)
	if got, want := g.Loaded(), (Loaded{Triplets: 2}); got != want {
		t.Errorf("Loaded() after the first restart = %+v, want %+v", got, want)
	}
	check(t, g, base, passed)
	g.Close()

	clk.Add(30 * day)
	g = open(t, dir, clk)
	// other never retried: its window is over, so Open dropped it.
	if got, want := g.Loaded(), (Loaded{Triplets: 1}); got != want {
		t.Errorf("Loaded() 30 days later = %+v, want %+v", got, want)
	}
	check(t, g, base, known)
	check(t, g, other, deferred(StatusNew, 5*time.Minute))
}

// written is a state file from a real run: base passed (its records: new,
// then passed), then b new. The records, in file order, are base/new,
// b/new, base/passed.
func written(t *testing.T, dir string, clk *clock) (b Triplet) {
	t.Helper()
	b = triplet("198.51.100.1", "x@sender.test", "bob@example.test")
	g := open(t, dir, clk)
	check(t, g, base, deferred(StatusNew, 5*time.Minute))
	check(t, g, b, deferred(StatusNew, 5*time.Minute))
	clk.Add(5 * time.Minute)
	check(t, g, base, passed)
	if err := g.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return b
}

// TestOpen_DamagedState: whatever happened to the file, Open never fails
// on its content and never crashes; damaged records are forgotten, intact
// ones kept, and the file is clean afterwards.
func TestOpen_DamagedState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		damage      func(b []byte) []byte
		wantBase    Decision // base, one minute after the retry that passed
		wantB       Decision // the second triplet, then
		wantDamaged int
	}{
		{"intact", func(b []byte) []byte { return b }, known, passed, 0},
		{"torn last record", func(b []byte) []byte { return b[:len(b)-10] },
			// base's pass is lost: it counts as retried in time again.
			passed, passed, 1},
		{"last newline missing", func(b []byte) []byte { return b[:len(b)-1] }, known, passed, 0},
		{"a bit flipped in the middle record", func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			lines[2][3] ^= 0x01
			return bytes.Join(lines, nil)
		}, known, deferred(StatusNew, 5*time.Minute), 1},
		{"zeros where the end was (crash before data reached disk)", func(b []byte) []byte {
			i := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
			return append(b[:i], make([]byte, len(b)-i)...)
		}, passed, passed, 1},
		{"garbage appended", func(b []byte) []byte { return append(b, "garbage\n\x00\x01\x02"...) }, known, passed, 2},
		{"an endless line appended", func(b []byte) []byte { return append(b, strings.Repeat("9", 10000)...) }, known, passed, 1},
		{"header damaged", func(b []byte) []byte { b[0] = 'X'; return b }, known, passed, 1},
		{"empty", func([]byte) []byte { return nil }, deferred(StatusNew, 5*time.Minute), deferred(StatusNew, 5*time.Minute), 0},
		{"all binary", func([]byte) []byte { return bytes.Repeat([]byte{0xff, 0x00, '\n', 0x7f}, 1000) }, deferred(StatusNew, 5*time.Minute), deferred(StatusNew, 5*time.Minute), 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, clk := t.TempDir(), newClock()
			b := written(t, dir, clk)
			path := filepath.Join(dir, FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}

			clk.Add(time.Minute)
			g := open(t, dir, clk)
			if got := g.Loaded().Damaged; got != tt.wantDamaged {
				t.Errorf("Loaded().Damaged = %d, want %d", got, tt.wantDamaged)
			}
			check(t, g, base, tt.wantBase)
			check(t, g, b, tt.wantB)
			c := triplet("203.0.113.5", "y@sender.test", "bob@example.test")
			check(t, g, c, deferred(StatusNew, 5*time.Minute))
			g.Close()

			// Open rewrote the file, and what was appended since is
			// readable: nothing damaged is left.
			g = open(t, dir, clk)
			if got := g.Loaded(); got.Damaged != 0 || got.Triplets != 3 {
				t.Errorf("after the repair, Loaded() = %+v, want 3 triplets, none damaged", got)
			}
			check(t, g, c, deferred(StatusEarly, 5*time.Minute))
		})
	}
}

// TestState_CompactsDeadRecords: triplets that never retried are dropped
// from memory and, once they outnumber the live ones enough, from the
// file.
func TestState_CompactsDeadRecords(t *testing.T) {
	t.Parallel()
	dir, clk := t.TempDir(), newClock()
	g := open(t, dir, clk)
	for i := range compactSlack + 500 {
		check(t, g, triplet("192.0.2.1", "spam"+strings.Repeat("x", i%7)+"@s.test", "r"+strconv.Itoa(i)+"@example.test"), deferred(StatusNew, 5*time.Minute))
	}
	clk.Add(3 * day)
	check(t, g, base, deferred(StatusNew, 5*time.Minute))
	if got := g.Len(); got != 1 {
		t.Errorf("Len() after the retry window = %d, want 1", got)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(data, []byte("\n")); lines != 2 {
		t.Errorf("state file has %d lines, want 2 (header and base's record):\n%.500s", lines, data)
	}
}

// faultFS is the real file system with one operation made to fail.
type faultFS struct {
	osFS
	mu sync.Mutex
	// fail returns the error for op ("create", "open", "write", "sync",
	// "rename") on name, or nil.
	fail  func(op, name string) error
	calls map[string]int
}

var errInjected = errors.New("injected failure")

func (f *faultFS) hit(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	if f.fail == nil {
		return nil
	}
	return f.fail(op, name)
}

func (f *faultFS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultFS) setFail(fail func(op, name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	op := "open"
	if flag&os.O_CREATE != 0 && flag&os.O_TRUNC != 0 {
		op = "create"
	}
	if err := f.hit(op, name); err != nil {
		return nil, err
	}
	file, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: name}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.hit("rename", newpath); err != nil {
		return err
	}
	return f.osFS.Rename(oldpath, newpath)
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

// Write fails after writing half of b, as a full disk or a crash would
// leave it.
func (f *faultFile) Write(b []byte) (int, error) {
	if err := f.fs.hit("write", f.name); err != nil {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, err
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	if err := f.fs.hit("sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func TestOpen_FailsWhenStateCannotBeWritten(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"create", "write", "sync", "rename"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fsys := &faultFS{fail: func(o, _ string) error {
				if o == op {
					return errInjected
				}
				return nil
			}}
			g, err := Open(Options{Dir: dir, Now: newClock().Now, FS: fsys})
			if !errors.Is(err, errInjected) {
				t.Errorf("Open with %s failing = %v, want the injected error", op, err)
			}
			if g != nil {
				g.Close()
			}
			if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("temporary file left behind: %v", err)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		if _, err := Open(Options{Dir: filepath.Join(t.TempDir(), "nowhere")}); err == nil {
			t.Error("Open in a missing directory succeeded, want an error")
		}
	})
	t.Run("no directory", func(t *testing.T) {
		t.Parallel()
		if _, err := Open(Options{}); err == nil {
			t.Error("Open without a directory succeeded, want an error")
		}
	})
}

// TestCheck_AppendFailure: the decision stands and is remembered in
// memory; a half-written record costs only itself.
func TestCheck_AppendFailure(t *testing.T) {
	t.Parallel()
	dir, clk := t.TempDir(), newClock()
	fsys := &faultFS{}
	g, err := Open(Options{Dir: dir, Now: clk.Now, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	other := triplet("198.51.100.1", "x@sender.test", "bob@example.test")
	check(t, g, other, deferred(StatusNew, 5*time.Minute))

	fsys.setFail(func(op, _ string) error {
		if op == "write" {
			return errInjected
		}
		return nil
	})
	got, err := g.Check(base)
	if !errors.Is(err, errInjected) || got != deferred(StatusNew, 5*time.Minute) {
		t.Errorf("Check with a failing append = %+v, %v; want deferred as new, and the injected error", got, err)
	}
	fsys.setFail(nil)
	clk.Add(5 * time.Minute)
	check(t, g, base, passed) // remembered in memory
	g.Close()

	g = open(t, dir, clk)
	if got := g.Loaded(); got.Triplets != 2 || got.Damaged != 1 {
		t.Errorf("Loaded() = %+v, want 2 triplets and the torn record damaged", got)
	}
	check(t, g, base, known)
	check(t, g, other, passed)
}

// TestCheck_CompactionFailure: a failed rewrite keeps the old file in use
// and is not retried on every Check.
func TestCheck_CompactionFailure(t *testing.T) {
	t.Parallel()
	dir, clk := t.TempDir(), newClock()
	fsys := &faultFS{}
	g, err := Open(Options{Dir: dir, Now: clk.Now, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for i := range compactSlack + 10 {
		check(t, g, triplet("192.0.2.1", "s@s.test", "r"+strconv.Itoa(i)+"@example.test"), deferred(StatusNew, 5*time.Minute))
	}
	clk.Add(3 * day)
	fsys.setFail(func(op, _ string) error {
		if op == "rename" {
			return errInjected
		}
		return nil
	})
	renames := fsys.count("rename")
	if _, err := g.Check(base); !errors.Is(err, errInjected) {
		t.Errorf("Check when the rewrite fails = %v, want the injected error", err)
	}
	for i := range 10 {
		check(t, g, triplet("192.0.2.1", "s@s.test", "late"+strconv.Itoa(i)+"@example.test"), deferred(StatusNew, 5*time.Minute))
	}
	if got := fsys.count("rename") - renames; got != 1 {
		t.Errorf("%d rewrites tried, want 1 until more records accumulate", got)
	}
	fsys.setFail(nil)
	clk.Add(5 * time.Minute)
	check(t, g, base, passed)
	g.Close()

	g = open(t, dir, clk)
	check(t, g, base, known)
	check(t, g, triplet("192.0.2.1", "s@s.test", "late3@example.test"), passed)
}
