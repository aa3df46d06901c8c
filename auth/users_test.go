package auth

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseUsers_ReadsUsersAndSkipsComments(t *testing.T) {
	t.Parallel()
	src := "# smarthost users\n" +
		"\n" +
		"alice:" + referenceArgon2id + "\n" +
		"   # indented comment\n" +
		"bob@example.com:{BLF-CRYPT}" + referenceBcrypt + "::::::\r\n" + // Dovecot passwd-file, CRLF
		"carol:" + referenceBcrypt // no final newline
	u, err := ParseUsers("users", src)
	if err != nil {
		t.Fatalf("ParseUsers: %v", err)
	}
	if got, want := u.Names(), []string{"alice", "bob@example.com", "carol"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got := u.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3", got)
	}
	if h, ok := u.lookup("bob@example.com"); !ok || !h.match([]byte("U*U")) {
		t.Errorf("bob@example.com's hash does not match its password")
	}
}

func TestParseUsers_RejectsWholeFileNamingEveryBadLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error
	}{
		{"no colon", "alice:" + referenceBcrypt + "\nbob\n", []string{"users:2: no ':'"}},
		{"unknown hash", "alice:secret\n", []string{"users:1: unknown hash format"}},
		{"empty hash", "alice:\n", []string{"users:1: user \"alice\" has no password hash"}},
		{"duplicate user", "a:" + referenceBcrypt + "\n#\na:" + referenceBcrypt + "\n", []string{"users:3: user \"a\" already defined on line 1"}},
		{"extra Dovecot fields", "a:" + referenceBcrypt + "::::::allow_nets=10.0.0.0/8\n", []string{"users:1: user \"a\": fields after the hash"}},
		{"bad name", "a b:" + referenceBcrypt + "\n", []string{"users:1: user name \"a b\" contains ' '"}},
		{"every problem at once", "x\nalice:nope\n", []string{"users:1: no ':'", "users:2: unknown hash format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := ParseUsers("users", tt.src)
			if u != nil || err == nil {
				t.Fatalf("ParseUsers(%q) = %v, %v; want nil and an error", tt.src, u, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseUsers(%q) error %q; want it to contain %q", tt.src, err, w)
				}
			}
		})
	}
}

func TestParseUsers_ErrorNeverShowsTheLine(t *testing.T) {
	t.Parallel()
	// A password pasted into the file by mistake must not end up in a log.
	_, err := ParseUsers("users", "hunter2\n")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("ParseUsers error = %v; want an error without the line's text", err)
	}
}

func TestValidateUserName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"alice@example.com", true},
		{"Ünïcødé", true},
		{"home-postfix.relay_1", true},
		{strings.Repeat("a", MaxUserNameLen), true},
		{"", false},
		{strings.Repeat("a", MaxUserNameLen+1), false},
		{"a:b", false},
		{"a b", false},
		{"a\tb", false},
		{"a\u00a0b", false}, // no-break space
		{"a\x00b", false},
		{"a\x7fb", false},
		{"a\nb", false},
		{"#alice", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		err := ValidateUserName(tt.name)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateUserName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		password string
		ok       bool
	}{
		{"pw", true},
		{" spaces kept ", true},
		{"pässwörd", true},
		{strings.Repeat("p", MaxPasswordLen), true},
		{"", false},
		{strings.Repeat("p", MaxPasswordLen+1), false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\r", false},
	}
	for _, tt := range tests {
		err := ValidatePassword(tt.password)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidatePassword(%q) = %v, want ok=%v", tt.password, err, tt.ok)
		}
	}
}
