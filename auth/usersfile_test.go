package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return splitLines(string(b))
}

func TestUsersFile_AddCreatesFileWithMode0600(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	f := UsersFile{Path: path}
	if err := f.Add("alice", "pw"); err != nil {
		t.Fatalf("Add: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("new users file mode %v, want 0600", got)
	}
	users, err := LoadUsers(path)
	if err != nil {
		t.Fatalf("LoadUsers after Add: %v", err)
	}
	v := NewVerifier(users, VerifierOptions{})
	if err := v.Verify(context.Background(), "alice", "pw"); err != nil {
		t.Errorf("Verify(alice, pw) after Add = %v, want nil", err)
	}
}

func TestUsersFile_EditsKeepCommentsAndOtherLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	before := []string{
		"# smarthost users: name:hash",
		"",
		"alice:" + referenceArgon2id,
		"  # migrated from Dovecot",
		"bob:{BLF-CRYPT}" + referenceBcrypt + "::::::",
		"dave:" + referenceBcrypt,
		"# end",
	}
	if err := os.WriteFile(path, []byte(strings.Join(before, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := UsersFile{Path: path}
	if err := f.SetPassword("bob", "new-bob-pw"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if err := f.Delete("dave"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := f.Add("carol", "carol-pw"); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got := readLines(t, path)
	// Every line we did not touch is byte for byte what it was; bob's is
	// replaced where it stood, dave's is gone and carol's is at the end.
	want := []string{before[0], before[1], before[2], before[3], "bob:$argon2id$", before[6], "carol:$argon2id$"}
	if len(got) != len(want) {
		t.Fatalf("file after edits:\n%s\nwant %d lines like:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		ok := got[i] == want[i] || strings.HasSuffix(want[i], "$argon2id$") && strings.HasPrefix(got[i], want[i])
		if !ok {
			t.Errorf("line %d = %q, want %q", i+1, got[i], want[i])
		}
	}
	users, err := LoadUsers(path)
	if err != nil {
		t.Fatalf("LoadUsers: %v", err)
	}
	v := NewVerifier(users, VerifierOptions{CacheTTL: -1})
	for _, c := range []struct {
		user, pw string
		want     error
	}{
		{"alice", "password", nil},
		{"bob", "new-bob-pw", nil},
		{"bob", "U*U", ErrInvalidCredentials},
		{"carol", "carol-pw", nil},
		{"dave", "U*U", ErrInvalidCredentials},
	} {
		if got := v.Verify(context.Background(), c.user, c.pw); !errors.Is(got, c.want) {
			t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pw, got, c.want)
		}
	}
}

func TestUsersFile_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string // initial content; "-" for no file
		edit    func(UsersFile) error
		want    error  // sentinel, or nil to check wantMsg
		wantMsg string // substring of the error
	}{
		{"add existing user", "alice:" + referenceBcrypt + "\n",
			func(f UsersFile) error { return f.Add("alice", "pw") }, ErrUserExists, ""},
		{"passwd unknown user", "alice:" + referenceBcrypt + "\n",
			func(f UsersFile) error { return f.SetPassword("bob", "pw") }, ErrUnknownUser, ""},
		{"passwd with no file", "-",
			func(f UsersFile) error { return f.SetPassword("bob", "pw") }, ErrUnknownUser, ""},
		{"del unknown user", "alice:" + referenceBcrypt + "\n",
			func(f UsersFile) error { return f.Delete("bob") }, ErrUnknownUser, ""},
		{"add bad name", "-",
			func(f UsersFile) error { return f.Add("a:b", "pw") }, nil, "contains ':'"},
		{"add empty password", "-",
			func(f UsersFile) error { return f.Add("alice", "") }, nil, "password is empty"},
		{"passwd empty password", "alice:" + referenceBcrypt + "\n",
			func(f UsersFile) error { return f.SetPassword("alice", "") }, nil, "password is empty"},
		{"broken line is not edited around", "alice:" + referenceBcrypt + "\ngarbage\n",
			func(f UsersFile) error { return f.Add("bob", "pw") }, nil, "users:2: no ':'"},
		{"duplicate user is not guessed at", "a:" + referenceBcrypt + "\na:" + referenceBcrypt + "\n",
			func(f UsersFile) error { return f.Delete("a") }, nil, "users:2: user \"a\" already defined on line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "users")
			if tt.file != "-" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := tt.edit(UsersFile{Path: path})
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("edit = %v, want error %v containing %q", err, tt.want, tt.wantMsg)
			}
			after, rerr := os.ReadFile(path)
			if tt.file == "-" {
				if !errors.Is(rerr, fs.ErrNotExist) {
					t.Errorf("failed edit created the file: %v", rerr)
				}
			} else if string(after) != tt.file {
				t.Errorf("failed edit changed the file to %q, want %q", after, tt.file)
			}
		})
	}
}

func TestUsersFile_ReplacedFileKeepsModeWithoutWorldBits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		before, want fs.FileMode
	}{
		{0o600, 0o600},
		{0o640, 0o640}, // root:smarthost, readable by the server's group
		{0o644, 0o640},
		{0o666, 0o640},
		{0o400, 0o400},
	}
	for _, tt := range tests {
		t.Run(tt.before.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "users")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.before); err != nil {
				t.Fatal(err)
			}
			if err := (UsersFile{Path: path}).Add("alice", "pw"); err != nil {
				t.Fatalf("Add: %v", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode after edit of a %v file = %v, want %v", tt.before, got, tt.want)
			}
		})
	}
}

func TestUsersFile_ConcurrentEditsAllLand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	if err := os.WriteFile(path, []byte("# keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Separate UsersFile values, as separate processes would have.
			if err := (UsersFile{Path: path}).Add(fmt.Sprintf("user%d", i), "pw"); err != nil {
				t.Errorf("Add(user%d): %v", i, err)
			}
		})
	}
	wg.Wait()
	users, err := LoadUsers(path)
	if err != nil {
		t.Fatalf("LoadUsers after concurrent edits: %v", err)
	}
	if got := users.Len(); got != n {
		t.Errorf("%d users after %d concurrent adds, want %d: %q", got, n, n, users.Names())
	}
	if got := readLines(t, path)[0]; got != "# keep me" {
		t.Errorf("first line = %q, want the comment kept", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only the users file (no temporary files left)", names)
	}
}

func TestUsersFile_ListDescribesHashes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	src := "# c\nalice:" + referenceArgon2id + "\nbob:{BLF-CRYPT}" + referenceBcrypt + "\ncarol:{SHA512-CRYPT}$6$x$y\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := UsersFile{Path: path}.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := []UserInfo{
		{Name: "alice", Scheme: "argon2id m=65536,t=2,p=1"},
		{Name: "bob", Scheme: "bcrypt cost=5"},
		{Name: "carol", Problem: "unsupported scheme {SHA512-CRYPT}; only argon2id and bcrypt (BLF-CRYPT) hashes work, so set a new password"},
	}
	if len(got) != len(want) {
		t.Fatalf("List() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("List()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// The unusable hash can be replaced, which is how it gets fixed.
	if err := (UsersFile{Path: path}).SetPassword("carol", "pw"); err != nil {
		t.Errorf("SetPassword over an unusable hash: %v", err)
	}
	if _, err := LoadUsers(path); err != nil {
		t.Errorf("LoadUsers after fixing carol: %v", err)
	}
}
