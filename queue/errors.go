package queue

import (
	"errors"
	"io/fs"
	"os"
)

// ErrStorage wraps every failure to write a message durably (disk full,
// I/O error, failed fsync). A session that sees it must answer 452 4.3.1,
// never 250.
var ErrStorage = errors.New("queue: storage failure")

// ErrNotFound is returned by the admin operations for a queue ID that is
// not (or no longer) in the queue.
var ErrNotFound = errors.New("queue: no such message")

// ErrHeld is returned by [Queue.Flush] for a message on hold: it must be
// released first, as with Postfix's postsuper -H.
var ErrHeld = errors.New("queue: message is on hold")

// storageError is a failed spool operation. It matches both [ErrStorage]
// and the underlying error (e.g. syscall.ENOSPC) with errors.Is.
type storageError struct {
	op   string // "create", "write", "fsync", "rename", "fsync directory"
	path string
	err  error
}

func (e *storageError) Error() string {
	// The os errors repeat the operation and path; keep only their cause.
	cause := e.err
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(e.err, &pe):
		cause = pe.Err
	case errors.As(e.err, &le):
		cause = le.Err
	}
	return "queue: " + e.op + " " + e.path + ": " + cause.Error()
}

func (e *storageError) Unwrap() []error { return []error{ErrStorage, e.err} }

// storageErr wraps err as a storage failure of op on path.
func storageErr(op, path string, err error) error {
	return &storageError{op: op, path: path, err: err}
}
