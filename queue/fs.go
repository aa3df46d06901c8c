package queue

import (
	"io"
	"io/fs"
	"os"
)

// FS is the part of the file system the spool uses. Every step of a durable
// write (create, write, fsync, rename, directory fsync) goes through it, so
// crash tests can make any one of them fail and then reopen the spool. A
// directory is fsynced by opening it read-only and calling [File.Sync].
//
// Implementations must be safe for concurrent use.
type FS interface {
	// OpenFile is [os.OpenFile].
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename is [os.Rename]: atomic replacement within one directory.
	Rename(oldpath, newpath string) error
	// Link is [os.Link]: it fails if newpath exists.
	Link(oldpath, newpath string) error
	// Remove is [os.Remove].
	Remove(name string) error
	// ReadDir is [os.ReadDir].
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll is [os.MkdirAll].
	MkdirAll(name string, perm fs.FileMode) error
}

// File is an open file; [*os.File] implements it.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync is fsync(2): it returns once the file's data and metadata are on
	// stable storage.
	Sync() error
	// Truncate is ftruncate(2): it cuts the file to size bytes.
	Truncate(size int64) error
}

// osFS is the real file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		// Return a nil interface, not a typed nil *os.File.
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Link(oldpath, newpath string) error           { return os.Link(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }

// readFile reads a whole file through fsys.
func readFile(fsys FS, name string) ([]byte, error) {
	return readFileInto(fsys, name, nil)
}

// readFileInto reads a whole file through fsys into buf's storage, growing
// it as needed, so that a loop reading many small files reuses one buffer.
func readFileInto(fsys FS, name string, buf []byte) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
