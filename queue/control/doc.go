// Package control is the local control socket through which `smarthost
// queue` administers the queue of a running server: a unix socket (mode
// 0600, in state_dir) carrying one JSON request per line and one JSON
// response per line.
//
// It owns the socket and the protocol, nothing else: every operation is a
// call on [queue.Queue], which does the work and logs it. It must not touch
// spool files, and it serves only its own user and root.
//
// The server side: relay creates the listener with [Listen] at
// [SocketPath](state_dir), and runs [NewServer](q, logger).Serve(l) until
// shutdown, then Close. The client side: cmd/smarthost calls [Dial], which
// fails with [ErrNotRunning] when no server is listening.
package control
