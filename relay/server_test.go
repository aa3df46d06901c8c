package relay

import (
	"context"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smarthost/config"
)

// startMX runs a whole server (real router, queue, sessions) with one mx
// listener in plain text, for relay-policy tests through the real wiring.
func startMX(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`hostname = "mail.example.org"
state_dir = %q
trusted_networks = ["192.0.2.0/24"]
relay_domains = ["example.com", ".sub.example.org"]
[[listener]]
name = "smtp"
address = %q
tls = "none"
role = "mx"
[auth]
users_file = %q
[transport]
"example.com" = "smtp:[127.0.0.1]:9"
"special@example.net" = "smtp:[127.0.0.1]:9"
".sub.example.org" = "smtp:[127.0.0.1]:9"
"*" = "smtp:[127.0.0.1]:9"
[dns]
server = "127.0.0.1:9"
`, filepath.Join(dir, "state"), l.Addr(), filepath.Join(dir, "users"))
	path := filepath.Join(dir, "smarthost.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Config: cfg, Listeners: map[string]net.Listener{"smtp": l}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// TestMX_RelayBatteryThroughRealRouting repeats the session's address
// tricks against the real router built from a configuration: relay domains,
// ".sub" entries, a transport-map address, and a "*" transport that must
// not open the relay.
func TestMX_RelayBatteryThroughRealRouting(t *testing.T) {
	t.Parallel()
	addr := startMX(t)
	tests := []struct {
		rcpt string
		code int
	}{
		{"user@example.com", 250},
		{"USER@Example.COM", 250},
		{"special@example.net", 250},
		{"user@a.sub.example.org", 250},
		{"user@sub.example.org", 554},
		{"other@example.net", 554},
		{"user@elsewhere.example", 554}, // only "*" routes it: still no relay
		{"user%elsewhere.example@example.com", 554},
		{"elsewhere.example!user@example.com", 554},
		{`"user@elsewhere.example"@example.com`, 554},
		{"user@[127.0.0.1]", 554},
		{"user@example.com.evil.example", 554},
	}
	c, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	cmd := func(line string) (int, string) {
		id, err := c.Cmd("%s", line)
		if err != nil {
			t.Fatal(err)
		}
		c.StartResponse(id)
		defer c.EndResponse(id)
		code, msg, _ := c.ReadResponse(0)
		return code, msg
	}
	cmd("EHLO client.example.net")
	if code, msg := cmd("MAIL FROM:<sender@outside.example>"); code != 250 {
		t.Fatalf("MAIL: %d %s", code, msg)
	}
	for _, tt := range tests {
		if code, msg := cmd("RCPT TO:<" + tt.rcpt + ">"); code != tt.code {
			t.Errorf("RCPT TO:<%s> = %d %s, want %d", tt.rcpt, code, msg, tt.code)
		} else if code == 554 && !strings.Contains(msg, "5.7.1 Relay access denied") {
			t.Errorf("RCPT TO:<%s> = %d %s, want 5.7.1 Relay access denied", tt.rcpt, code, msg)
		}
	}
}
