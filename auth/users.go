package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserNameLen is the longest user name accepted, in bytes. RFC 4616 §2
// requires a PLAIN server to accept authentication identities of up to 255
// octets; user names are often mail addresses, which fit.
const MaxUserNameLen = 255

// MaxPasswordLen is the longest password [ValidatePassword] accepts, in
// bytes. It is generous for passphrases and keeps a pasted file from
// becoming a password by accident.
const MaxPasswordLen = 1024

// Users is an immutable snapshot of a users file: user names and their
// password hashes. It is safe for concurrent use because it never changes;
// a reload makes a new one and hands it to [Verifier.Swap].
type Users struct {
	file   string
	names  []string // in file order
	hashes map[string]passwordHash
}

// LoadUsers reads and parses the users file at path; see [ParseUsers].
func LoadUsers(path string) (*Users, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: users file: %w", err)
	}
	return ParseUsers(path, string(src))
}

// ParseUsers parses users file text; path names it in errors.
//
// Each line is "name:hash". Blank lines and lines starting with '#' are
// ignored. The hash is an argon2id PHC string or a bcrypt hash ($2a$, $2b$,
// $2y$), optionally behind a Dovecot scheme prefix ({ARGON2ID},
// {BLF-CRYPT}); empty trailing fields, as in Dovecot's passwd-file
// "name:{BLF-CRYPT}$2y$...::::::", are allowed, other fields are not,
// because they would carry Dovecot settings (allow_nets=...) that smarthost
// does not enforce.
//
// A file with any bad line is rejected as a whole, with every problem
// reported as "path:line: problem", so a reload never installs half a file.
func ParseUsers(path, src string) (*Users, error) {
	u := &Users{file: path, hashes: make(map[string]passwordHash)}
	firstLine := make(map[string]int)
	var errs []error
	for i, raw := range splitLines(src) {
		n := i + 1
		l, err := parseLine(raw)
		if err == nil && l.name != "" {
			if prev, dup := firstLine[l.name]; dup {
				err = fmt.Errorf("user %q already defined on line %d; remove one of the lines", l.name, prev)
			}
		}
		var h passwordHash
		if err == nil && l.name != "" {
			h, err = parseHash(l.hash)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("auth: %s:%d: %w", path, n, err))
			continue
		}
		if l.name == "" {
			continue
		}
		firstLine[l.name] = n
		u.names = append(u.names, l.name)
		u.hashes[l.name] = h
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return u, nil
}

// File is the path the snapshot was read from.
func (u *Users) File() string { return u.file }

// Len is the number of users.
func (u *Users) Len() int { return len(u.names) }

// Names returns the user names in file order. The slice is a copy.
func (u *Users) Names() []string { return append([]string(nil), u.names...) }

// lookup returns the user's hash. A nil *Users has no users, so a
// [Verifier] can start before the first file is read.
func (u *Users) lookup(name string) (passwordHash, bool) {
	if u == nil {
		return nil, false
	}
	h, ok := u.hashes[name]
	return h, ok
}

// line is one parsed users file line. A comment or blank line has no name.
type line struct {
	name string
	hash string
}

// parseLine splits a users file line into name and hash without checking
// the hash, so that editing can replace a hash that does not parse.
func parseLine(raw string) (line, error) {
	s := strings.TrimSpace(raw)
	if s == "" || strings.HasPrefix(s, "#") {
		return line{}, nil
	}
	name, rest, ok := strings.Cut(s, ":")
	if !ok {
		return line{}, fmt.Errorf("no ':' between name and hash; write NAME:HASH")
	}
	if err := ValidateUserName(name); err != nil {
		return line{}, err
	}
	hash, extra, _ := strings.Cut(rest, ":")
	if strings.Trim(extra, ":") != "" {
		return line{}, fmt.Errorf("user %q: fields after the hash are not supported; remove them", name)
	}
	if hash == "" {
		return line{}, fmt.Errorf("user %q has no password hash; set one with smarthost user passwd", name)
	}
	return line{name: name, hash: hash}, nil
}

// splitLines splits file text into lines without their line ends; a final
// line end does not start another line.
func splitLines(src string) []string {
	if src == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(src, "\n"), "\n")
}

// ValidateUserName reports why name cannot be a user name, or nil. A name
// is 1 to [MaxUserNameLen] bytes of UTF-8 with no ':' (the field
// separator), no white space and no control characters (which would make
// the file or the log ambiguous), and does not start with '#' (which would
// make its line a comment). Names are compared exactly, case included.
func ValidateUserName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("user name is empty")
	case len(name) > MaxUserNameLen:
		return fmt.Errorf("user name is longer than %d bytes", MaxUserNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("user name is not valid UTF-8")
	case strings.HasPrefix(name, "#"):
		return fmt.Errorf("user name %q starts with '#'", name)
	}
	for _, r := range name {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("user name %q contains %q; use letters, digits and punctuation other than ':'", name, r)
		}
	}
	return nil
}

// ValidatePassword reports why password cannot be set, or nil. It must be
// 1 to [MaxPasswordLen] bytes without NUL, CR or LF: SASL PLAIN separates
// its fields with NUL, and a line end cannot be typed into a password
// prompt.
func ValidatePassword(password string) error {
	switch {
	case password == "":
		return fmt.Errorf("password is empty")
	case len(password) > MaxPasswordLen:
		return fmt.Errorf("password is longer than %d bytes", MaxPasswordLen)
	case strings.ContainsAny(password, "\x00\r\n"):
		return fmt.Errorf("password contains NUL, CR or LF")
	}
	return nil
}
