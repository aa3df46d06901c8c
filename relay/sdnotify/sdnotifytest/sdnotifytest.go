// Package sdnotifytest plays systemd's side of sd_notify in tests: a
// unixgram socket whose path goes into NOTIFY_SOCKET, and the datagrams a
// service sent to it.
package sdnotifytest

import (
	"net"
	"path/filepath"
	"testing"
)

// Socket listens on a fresh NOTIFY_SOCKET path, closed when the test ends,
// and returns the path and a channel of every datagram received, in order.
func Socket(t testing.TB) (path string, got <-chan string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}
