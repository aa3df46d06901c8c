package queue

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smarthost/queue/mlog"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it when the test ends. It skips the test when mounting is not
// permitted (not root, or no CAP_SYS_ADMIN in a container).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("disk-full test needs to mount a tmpfs (run as root or with CAP_SYS_ADMIN): mount -t tmpfs -o size=%d tmpfs %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestCommit_DiskFullReturnsErrStorageAndLeavesNoTemporaries(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, 256<<10)
	tq := newTestQueue(t, func(o *Options) { o.Dir = filepath.Join(mnt, "queue") })

	committed := map[ID]string{}
	failures := map[string]int{} // which call failed: Write or Commit
	// Fill the disk with large messages, then ever smaller ones, so the
	// disk runs out at every point: while writing data, at the data
	// flush, and at the envelope record.
	for _, size := range []int{300 << 10, 40 << 10, 16 << 10, 8 << 10, 4 << 10, 2 << 10, 1 << 10, 512, 64, 1} {
		for range 64 {
			body := strings.Repeat("x", size)
			d, err := tq.Create()
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			where := "Write"
			_, err = d.Write([]byte(body))
			if err == nil {
				where = "Commit"
				err = d.Commit(testEnvelope(), []byte(testHeader))
			} else if cerr := d.Commit(testEnvelope(), nil); cerr == nil {
				t.Errorf("Commit after a failed Write succeeded")
			}
			if err == nil {
				committed[d.ID()] = testHeader + body
				continue
			}
			d.Abort()
			if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("%s on a full disk = %v, want an error wrapping ErrStorage and ENOSPC", where, err)
			}
			failures[where]++
			if files := spoolFiles(t, tq.opts.Dir); hasTemporaries(files) {
				t.Fatalf("temporaries left after %s failed on a full disk: %q", where, files)
			}
			for _, f := range spoolFiles(t, tq.opts.Dir) {
				if strings.HasPrefix(f, string(d.ID())) {
					t.Fatalf("failed message %s left %s behind", d.ID(), f)
				}
			}
			break // next, smaller size
		}
	}
	if failures["Commit"] == 0 || failures["Write"] == 0 || len(committed) == 0 {
		t.Fatalf("disk did not fill both at Write and at Commit (failures %v, %d committed); the test is not testing anything", failures, len(committed))
	}
	t.Logf("%d messages committed; failures on the full disk: %v", len(committed), failures)

	// Everything committed before and between the failures is delivered.
	tq.reopen(t)
	if n := len(tq.List()); n != len(committed) {
		t.Errorf("after reopening the full spool: %d messages, want %d", n, len(committed))
	}
	tq.run(t)
	tq.log.wait(t, len(committed), mlog.Removed)
	for id, want := range committed {
		if got := tq.deliv.deliveries(id); len(got) != 1 || string(got[0].Data) != want {
			t.Errorf("message %s: %d deliveries, want 1 with the committed bytes", id, len(got))
		}
	}
}
