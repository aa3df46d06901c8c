package sdnotify

import (
	"context"
	"strings"
	"testing"
	"time"

	"smarthost/relay/sdnotify/sdnotifytest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func recv(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
		return ""
	}
}

func TestNotifier_SendsStatesToTheSocket(t *testing.T) {
	t.Parallel()
	path, got := sdnotifytest.Socket(t)
	n := New(env(map[string]string{"NOTIFY_SOCKET": path}))
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	n.Ready()
	if s := recv(t, got); s != "READY=1" {
		t.Errorf("Ready sent %q", s)
	}
	n.Reloading()
	if s := recv(t, got); !strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(s, "=0") {
		t.Errorf("Reloading sent %q", s)
	}
	n.Stopping()
	if s := recv(t, got); s != "STOPPING=1" {
		t.Errorf("Stopping sent %q", s)
	}
}

func TestNotifier_WatchdogPingsWhileHealthy(t *testing.T) {
	t.Parallel()
	path, got := sdnotifytest.Socket(t)
	n := New(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Watchdog(ctx, func() bool { return true })
	if s := recv(t, got); s != "WATCHDOG=1" {
		t.Errorf("watchdog sent %q", s)
	}
}

func TestNotifier_OutsideSystemdDoesNothing(t *testing.T) {
	t.Parallel()
	n := New(env(nil))
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	if err := n.Ready(); err != nil {
		t.Errorf("Ready() outside systemd = %v", err)
	}
	var zero *Notifier
	if err := zero.Stopping(); err != nil {
		t.Errorf("nil Notifier: %v", err)
	}
}
