package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"smarthost/queue"
	"smarthost/queue/mlog"
)

const (
	// maxRequest bounds one request line; a delete of a few thousand IDs
	// fits.
	maxRequest = 1 << 20
	// idleTimeout closes a connection that sends nothing.
	idleTimeout = 2 * time.Minute
)

// Server answers control requests with calls on a [queue.Queue]. It is safe
// for concurrent use.
type Server struct {
	q   *queue.Queue
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]bool
	conns     map[net.Conn]bool
	wg        sync.WaitGroup
}

// NewServer returns a server for q; logger receives connection problems
// (the queue logs the operations themselves).
func NewServer(q *queue.Queue, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{q: q, log: logger, listeners: map[net.Listener]bool{}, conns: map[net.Conn]bool{}}
}

// Listen creates the control socket at path with mode 0600. A socket left
// by a crashed process is replaced; if another server answers on it,
// Listen fails. The socket's directory should be private (state_dir is
// 0700): the socket exists briefly before its mode is narrowed.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control: %s is in use by a running server", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return l, nil
}

// Serve accepts connections on l until [Server.Close], then returns nil.
// Any other accept error is returned. The listener is closed on return.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(c)
		}()
	}
}

// Close stops every Serve, closes open connections and waits for their
// handlers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// serveConn answers requests on one connection until it closes.
func (s *Server) serveConn(c net.Conn) {
	if err := checkPeer(c); err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, mlog.Rejected,
			slog.String(mlog.QueueID, mlog.NoQueue), slog.String(mlog.Stage, "control"), slog.String(mlog.Reason, err.Error()))
		return
	}
	r := bufio.NewReaderSize(c, 64<<10)
	enc := json.NewEncoder(c)
	for {
		c.SetDeadline(time.Now().Add(idleTimeout))
		line, err := readLine(r, maxRequest)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				enc.Encode(Response{Error: "control: request too long", Code: CodeBadRequest})
			}
			return
		}
		if err := enc.Encode(s.handle(line)); err != nil {
			return
		}
	}
}

// handle decodes and runs one request.
func (s *Server) handle(line []byte) Response {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Response{Error: fmt.Sprintf("control: bad request: %v", err), Code: CodeBadRequest}
	}
	if !req.Op.Valid() {
		return Response{Error: fmt.Sprintf("control: unknown operation %q", req.Op), Code: CodeBadRequest}
	}
	if err := req.Op.checkIDs(len(req.IDs)); err != nil {
		return Response{Error: err.Error(), Code: CodeBadRequest}
	}
	var resp Response
	var err error
	switch req.Op {
	case OpList:
		resp.Messages = s.q.List()
	case OpShow:
		var d queue.Detail
		d, err = s.q.Show(req.IDs[0])
		resp.Detail = &d
	case OpFlush:
		err = s.q.Flush(req.IDs...)
	case OpFlushDomain:
		if req.Domain == "" {
			return Response{Error: "control: flush_domain: no domain", Code: CodeBadRequest}
		}
		resp.Count = s.q.FlushDomain(req.Domain)
	case OpDelete:
		err = s.q.Delete(req.IDs...)
	case OpDeleteAll:
		resp.Count, err = s.q.DeleteAll()
	case OpHold:
		err = s.q.Hold(req.IDs[0])
	case OpRelease:
		err = s.q.Release(req.IDs[0])
	}
	if err != nil {
		return Response{Error: err.Error(), Code: codeOf(err), Count: resp.Count}
	}
	return resp
}

var errLineTooLong = errors.New("control: line too long")

// readLine reads one newline-terminated line of at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// checkPeer admits only root and the server's own user on a unix socket,
// in case the socket's mode is ever widened.
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("control: peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("control: peer credentials: %w", err)
	}
	if credErr != nil {
		return fmt.Errorf("control: peer credentials: %w", credErr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("control: peer uid %d is neither root nor the server's user", cred.Uid)
	}
	return nil
}
