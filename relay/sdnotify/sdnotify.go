// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) so that
// smarthost can run as a Type=notify service: READY=1 once it listens,
// RELOADING=1 while it applies SIGHUP, STOPPING=1 on SIGTERM, and
// WATCHDOG=1 pings while it is healthy.
//
// It owns only the datagram to $NOTIFY_SOCKET; without that variable (not
// under systemd) every call does nothing. It needs no library: the
// protocol is one unix datagram of newline-separated assignments.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends state changes to the service manager. The zero value
// (and a Notifier from [New] outside systemd) does nothing.
type Notifier struct {
	socket   string
	watchdog time.Duration
	now      func() time.Time
}

// New reads $NOTIFY_SOCKET and $WATCHDOG_USEC from env (os.Getenv in
// production) as sd_notify(3) and sd_watchdog_enabled(3) do.
func New(env func(string) string) *Notifier {
	n := &Notifier{socket: env("NOTIFY_SOCKET"), now: time.Now}
	if us, err := strconv.ParseInt(env("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		if pid := env("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(us) * time.Microsecond
		}
	}
	return n
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Notify sends one state string, e.g. "READY=1".
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	if addr.Name[0] == '@' { // abstract socket
		addr.Name = "\x00" + addr.Name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready says start-up is complete.
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Reloading says a reload began; call Ready when it is done. MONOTONIC_USEC
// lets newer systemd (Type=notify-reload) match the two.
func (n *Notifier) Reloading() error {
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping says shutdown began.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Status sets the free-form status line systemctl status shows.
func (n *Notifier) Status(s string) error { return n.Notify("STATUS=" + s) }

// Watchdog pings the watchdog at half its timeout until ctx is done, as
// sd_watchdog_enabled(3) recommends, as long as healthy returns true: a
// wedged server stops pinging and systemd restarts it.
func (n *Notifier) Watchdog(ctx context.Context, healthy func() bool) {
	if !n.Enabled() || n.watchdog <= 0 {
		return
	}
	t := time.NewTicker(n.watchdog / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				n.Notify("WATCHDOG=1")
			}
		}
	}
}
