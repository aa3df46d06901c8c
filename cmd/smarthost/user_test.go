package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/auth"
)

// userEnv is a directory with a valid configuration whose users_file is
// "users" next to it.
type userEnv struct {
	dir, config, users string
}

func newUserEnv(t *testing.T) userEnv {
	t.Helper()
	dir := t.TempDir()
	e := userEnv{dir: dir, config: filepath.Join(dir, "smarthost.toml"), users: filepath.Join(dir, "users")}
	src := "hostname = \"mail.example.org\"\n[tls]\nself_signed = true\n[auth]\nusers_file = \"users\"\n"
	if err := os.WriteFile(e.config, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// runCmd runs smarthost with args and stdin, returning exit code, stdout
// and stderr.
func runCmd(args []string, stdin string, terminal bool) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb, inIsTerminal: terminal})
	return code, out.String(), errb.String()
}

// verify reports what the users file says of user and password.
func verify(t *testing.T, path, user, password string) error {
	t.Helper()
	users, err := auth.LoadUsers(path)
	if err != nil {
		t.Fatalf("LoadUsers(%s): %v", path, err)
	}
	return auth.NewVerifier(users, auth.VerifierOptions{}).Verify(context.Background(), user, password)
}

func TestUser_AddPasswdListDelEndToEnd(t *testing.T) {
	t.Parallel()
	e := newUserEnv(t)
	steps := []struct {
		args     []string
		stdin    string
		wantCode int
		wantOut  string // substring of stdout
		wantErr  string // substring of stderr
	}{
		{[]string{"user", "add", "alice", "-config", e.config}, "s3cret pw\n", 0, "added user alice to " + e.users, ""},
		{[]string{"user", "add", "alice", "-config", e.config}, "other\n", 1, "", `user "alice" already exists`},
		{[]string{"user", "add", "-config", e.config, "bob"}, "bob-pw\r\n", 0, "added user bob", ""},
		{[]string{"user", "passwd", "alice", "-config", e.config}, "n3w pw\n", 0, "changed the password of alice", ""},
		{[]string{"user", "list", "-config", e.config}, "", 0, "alice  argon2id m=12288,t=3,p=1\nbob    argon2id", ""},
		{[]string{"user", "del", "bob", "-config", e.config}, "", 0, "deleted user bob", ""},
		{[]string{"user", "del", "bob", "-config", e.config}, "", 1, "", `no such user "bob"`},
		{[]string{"user", "passwd", "carol", "-config", e.config}, "pw\n", 1, "", `no such user "carol"`},
	}
	for i, s := range steps {
		code, out, errOut := runCmd(s.args, s.stdin, false)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErr) {
			t.Fatalf("step %d: run(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
				i, s.args, code, out, errOut, s.wantCode, s.wantOut, s.wantErr)
		}
		if strings.Contains(out+errOut, strings.TrimSpace(s.stdin)) && s.stdin != "" {
			t.Errorf("step %d: the password %q appears in the output", i, s.stdin)
		}
	}
	fi, err := os.Stat(e.users)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("users file mode %v, want 0600", got)
	}
	for _, c := range []struct {
		user, pw string
		want     error
	}{
		{"alice", "n3w pw", nil},
		{"alice", "s3cret pw", auth.ErrInvalidCredentials},
		{"bob", "bob-pw", auth.ErrInvalidCredentials}, // deleted
	} {
		if got := verify(t, e.users, c.user, c.pw); !errors.Is(got, c.want) {
			t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pw, got, c.want)
		}
	}
}

func TestUser_BadInvocations(t *testing.T) {
	t.Parallel()
	e := newUserEnv(t)
	broken := filepath.Join(e.dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[auth]\nusers_file = \"users\"\nmax_failures = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"no action", []string{"user", "-config", e.config}, "", 2, "usage: smarthost user"},
		{"unknown action", []string{"user", "frob", "alice", "-config", e.config}, "", 2, `unknown action "frob"`},
		{"add without a name", []string{"user", "add", "-config", e.config}, "pw\n", 2, "want 1 user name(s), got 0"},
		{"add with two names", []string{"user", "add", "a", "b", "-config", e.config}, "pw\n", 2, "want 1 user name(s), got 2"},
		{"list with a name", []string{"user", "list", "alice", "-config", e.config}, "", 2, "want 0 user name(s), got 1"},
		{"no password on stdin", []string{"user", "add", "alice", "-config", e.config}, "", 1, "no password on standard input"},
		{"empty password line", []string{"user", "add", "alice", "-config", e.config}, "\n", 1, "password is empty"},
		{"name with a colon", []string{"user", "add", "a:b", "-config", e.config}, "pw\n", 1, `user name "a:b" contains ':'`},
		{"name with a space", []string{"user", "add", "a b", "-config", e.config}, "pw\n", 1, "contains ' '"},
		{"config with an error elsewhere", []string{"user", "add", "alice", "-config", broken}, "pw\n", 1, "-users FILE"},
		{"missing config", []string{"user", "list", "-config", filepath.Join(e.dir, "nope.toml")}, "", 1, "no such file"},
		{"list before any user", []string{"user", "list", "-config", e.config}, "", 1, "does not exist; add one with"},
		{"-h", []string{"user", "-h"}, "", 0, "-users file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runCmd(tt.args, tt.stdin, false)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("run(%q) = %d, stderr:\n%s\nwant %d, stderr with %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
	if _, err := os.Stat(e.users); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed command created the users file (%v)", err)
	}
}

func TestUser_UsersFlagBypassesConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	// No configuration file exists at all, and -users comes before the
	// action: flags go anywhere.
	code, out, errOut := runCmd([]string{"user", "-users", users, "-config", filepath.Join(dir, "missing.toml"), "add", "alice"}, "pw\n", false)
	if code != 0 {
		t.Fatalf("run = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if err := verify(t, users, "alice", "pw"); err != nil {
		t.Errorf("Verify(alice, pw) = %v, want nil", err)
	}
}

func TestUser_TerminalAsksTwice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"both agree", "pw\npw\n", 0, "New password for alice: Retype the password: "},
		{"they differ", "pw\npx\n", 1, "passwords do not match"},
		{"empty first answer", "\n", 1, "password is empty"},
		{"no second answer", "pw\n", 1, "read password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			users := filepath.Join(t.TempDir(), "users")
			code, _, errOut := runCmd([]string{"user", "add", "alice", "-users", users}, tt.stdin, true)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("run = %d, stderr:\n%s\nwant %d, stderr with %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			_, statErr := os.Stat(users)
			if created := statErr == nil; created != (tt.wantCode == 0) {
				t.Errorf("users file created = %v, want %v", created, tt.wantCode == 0)
			}
		})
	}
}
