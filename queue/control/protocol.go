package control

import (
	"errors"
	"fmt"
	"path/filepath"

	"smarthost/queue"
)

// SocketName is the control socket's file name inside state_dir.
const SocketName = "control.sock"

// SocketPath returns the control socket's path for a state directory.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, SocketName) }

// Op is a request's operation; each is one [queue.Queue] admin method.
type Op string

// The operations.
const (
	OpList        Op = "list"         // Queue.List; no IDs
	OpShow        Op = "show"         // Queue.Show; one ID
	OpFlush       Op = "flush"        // Queue.Flush; any number of IDs (none: all)
	OpFlushDomain Op = "flush_domain" // Queue.FlushDomain; no IDs, Request.Domain
	OpDelete      Op = "delete"       // Queue.Delete; at least one ID
	OpDeleteAll   Op = "delete_all"   // Queue.DeleteAll; no IDs
	OpHold        Op = "hold"         // Queue.Hold; one ID
	OpRelease     Op = "release"      // Queue.Release; one ID
)

// Valid reports whether o is a known operation.
func (o Op) Valid() bool {
	switch o {
	case OpList, OpShow, OpFlush, OpFlushDomain, OpDelete, OpDeleteAll, OpHold, OpRelease:
		return true
	}
	return false
}

// checkIDs reports whether n IDs suit the operation.
func (o Op) checkIDs(n int) error {
	ok := true
	switch o {
	case OpList, OpDeleteAll, OpFlushDomain:
		ok = n == 0
	case OpShow, OpHold, OpRelease:
		ok = n == 1
	case OpDelete:
		ok = n >= 1
	}
	if !ok {
		return fmt.Errorf("control: %s: wrong number of queue IDs (%d)", o, n)
	}
	return nil
}

// Request is one line from the client.
type Request struct {
	Op  Op         `json:"op"`
	IDs []queue.ID `json:"ids,omitempty"`
	// Domain is the recipient domain of flush_domain.
	Domain string `json:"domain,omitempty"`
}

// Response is one line from the server. Error is empty on success.
type Response struct {
	Error string `json:"error,omitempty"`
	// Code classifies Error so the client can rebuild the sentinel:
	// CodeNotFound, CodeHeld, CodeStorage, CodeBadRequest or CodeInternal.
	Code     string          `json:"code,omitempty"`
	Messages []queue.Summary `json:"messages,omitempty"` // list
	Detail   *queue.Detail   `json:"detail,omitempty"`   // show
	Count    int             `json:"count,omitempty"`    // delete_all, flush_domain
}

// Error codes.
const (
	CodeNotFound   = "not_found"
	CodeHeld       = "held"
	CodeStorage    = "storage"
	CodeBadRequest = "bad_request"
	CodeInternal   = "internal"
)

// codeOf classifies an error from the queue.
func codeOf(err error) string {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, queue.ErrHeld):
		return CodeHeld
	case errors.Is(err, queue.ErrStorage):
		return CodeStorage
	}
	return CodeInternal
}

// RemoteError is an error the server reported. It matches the queue's
// sentinel for its code with errors.Is, so callers can test for
// [queue.ErrNotFound] across the socket.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel matching Code, if any.
func (e *RemoteError) Unwrap() error {
	switch e.Code {
	case CodeNotFound:
		return queue.ErrNotFound
	case CodeHeld:
		return queue.ErrHeld
	case CodeStorage:
		return queue.ErrStorage
	}
	return nil
}
