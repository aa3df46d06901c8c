package greylist

import (
	"io"
	"io/fs"
	"os"
)

// FS is the part of the file system the state file uses. Every step of a
// rewrite (create, write, fsync, rename, directory fsync) and of an append
// goes through it, so tests can make any one of them fail. A directory is
// fsynced by opening it read-only and calling [File.Sync].
type FS interface {
	// OpenFile is [os.OpenFile].
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename is [os.Rename]: atomic replacement within one directory.
	Rename(oldpath, newpath string) error
	// Remove is [os.Remove].
	Remove(name string) error
}

// File is an open file; [*os.File] implements it.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync is fsync(2).
	Sync() error
}

// osFS is the real file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		// A nil interface, not a typed nil *os.File.
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
