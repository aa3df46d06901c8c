//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package auth

import (
	"io/fs"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock(2) on dir and returns the function that
// releases it. The directory is locked rather than the file because the
// file is replaced by rename: a lock on the old inode would not stop a
// second editor that opened the new one.
func lockDir(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	fd := int(d.Fd())
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(fd, syscall.LOCK_UN)
		d.Close()
	}, nil
}

// keepOwner gives tmp the owner and group of old when they differ. Only
// root may give a file away; anyone else gets an error unless they already
// own it with that group, and the file is then not replaced.
func keepOwner(tmp *os.File, old fs.FileInfo) error {
	want, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := tmp.Stat()
	if err != nil {
		return err
	}
	have, ok := fi.Sys().(*syscall.Stat_t)
	if ok && have.Uid == want.Uid && have.Gid == want.Gid {
		return nil
	}
	return tmp.Chown(int(want.Uid), int(want.Gid))
}
