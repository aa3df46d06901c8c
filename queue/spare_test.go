package queue

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/queue/mlog"
)

func TestSpare_RemovedMessageFilesMakeTheNextMessage(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.run(t)
	big := testBody + strings.Repeat("a longer message than the next one\r\n", 2000)
	first := commit(t, tq.Queue, testEnvelope(), testHeader, big)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(first))
	spares := spareFiles(t, tq.opts.Dir)
	if want := []string{string(first) + extData + extSpare, string(first) + extRecord + extSpare}; !equalSets(spares, want) {
		t.Fatalf("spares after delivery = %q, want %q", spares, want)
	}
	var before []os.FileInfo
	for _, name := range spares {
		fi, err := os.Stat(filepath.Join(tq.opts.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, fi)
	}

	second := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(second))
	got := tq.deliv.deliveries(second)
	if len(got) != 1 || string(got[0].Data) != testHeader+testBody {
		t.Fatalf("second message: %d deliveries, want 1 of exactly its own %d bytes", len(got), len(testHeader+testBody))
	}
	// Its files were the first message's: the same inodes, now spares
	// again under the second message's names.
	for _, name := range []string{string(second) + extData + extSpare, string(second) + extRecord + extSpare} {
		fi, err := os.Stat(filepath.Join(tq.opts.Dir, name))
		if err != nil {
			t.Fatalf("spare of the second message: %v", err)
		}
		if !os.SameFile(fi, before[0]) && !os.SameFile(fi, before[1]) {
			t.Errorf("%s is a new file, want one of the first message's", name)
		}
	}
	if n := len(spareFiles(t, tq.opts.Dir)); n != 2 {
		t.Errorf("spares after the second message = %d, want 2", n)
	}
}

func TestSpare_LargeDataFileIsDeleted(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.run(t)
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody+strings.Repeat("x", maxSpareSize)+"\r\n")
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	if spares := spareFiles(t, tq.opts.Dir); len(spares) != 1 || spares[0] != string(id)+extRecord+extSpare {
		t.Errorf("spares after a message larger than %d bytes = %q, want only its record's", maxSpareSize, spares)
	}
}

func TestSpare_RecoveryKeepsAtMostMaxSpares(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, func(o *Options) { seedSpares(t, o.Dir, maxSpares+5, 100) })
	if n := len(spareFiles(t, tq.opts.Dir)); n != maxSpares {
		t.Errorf("spares after recovery = %d, want %d", n, maxSpares)
	}
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	if n := len(spareFiles(t, tq.opts.Dir)); n != maxSpares-2 {
		t.Errorf("spares after a commit = %d, want %d (two reused)", n, maxSpares-2)
	}
	tq.run(t)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	if got := tq.deliv.deliveries(id); len(got) != 1 || string(got[0].Data) != testHeader+testBody {
		t.Errorf("message made from seeded spares: %d deliveries, want 1 of exactly its own bytes", len(got))
	}
}

func TestSpare_DataFileOpenForReadingIsNotReused(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	r, err := tq.openData(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := tq.Delete(id); err != nil {
		t.Fatal(err)
	}
	// Only the record became a spare; a new message cannot write into the
	// file being read.
	if spares := spareFiles(t, tq.opts.Dir); len(spares) != 1 || spares[0] != string(id)+extRecord+extSpare {
		t.Errorf("spares after deleting a message being read = %q, want only its record's", spares)
	}
	commit(t, tq.Queue, testEnvelope(), testHeader, strings.Repeat("OVERWRITTEN\r\n", 100))
	got, err := io.ReadAll(r)
	if err != nil || string(got) != testBody {
		t.Errorf("reader of the deleted message read %.60q, %v; want its own bytes", got, err)
	}
}

func TestSpare_UnusableSpareGivesWayToANewFile(t *testing.T) {
	t.Parallel()
	var ffs *faultFS
	tq := newTestQueue(t, func(o *Options) {
		seedSpares(t, o.Dir, 1, 100)
		ffs = &faultFS{dir: o.Dir, op: "link", suffix: extData + extTmp}
		o.FS = ffs
	})
	ffs.arm()
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	if !ffs.fired {
		t.Fatal("the spare was not tried")
	}
	if n := len(spareFiles(t, tq.opts.Dir)); n != 0 {
		t.Errorf("spares after a failed reuse = %d, want 0 (dropped)", n)
	}
	tq.run(t)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	if got := tq.deliv.deliveries(id); len(got) != 1 || string(got[0].Data) != testHeader+testBody {
		t.Errorf("%d deliveries, want 1 of exactly the message's bytes", len(got))
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}
