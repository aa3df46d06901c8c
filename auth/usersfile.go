package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// newFileMode is the mode of a users file [UsersFile] creates: it holds
// password hashes, so only its owner may read it.
const newFileMode fs.FileMode = 0o600

// UsersFile edits the users file at Path for `smarthost user`. Every change
// rewrites the whole file atomically: a temporary file in the same
// directory is written, fsynced and renamed over the old one, and the
// directory is fsynced, so a reader (the server on SIGHUP) sees either the
// old file or the new one, and a crash leaves one of the two. Comments,
// blank lines and other users' lines are kept as they were.
//
// A new file gets mode 0600. A replaced file keeps its owner, group and
// mode, minus any group-write and world bits: a root:smarthost 0640 file
// stays readable by the server, but nothing makes the hashes readable to
// everyone.
//
// Edits by several processes at once are serialised with an advisory lock
// on the directory (flock(2) where available), so none is lost. The running
// server does not see a change until it reloads (SIGHUP).
type UsersFile struct {
	Path string
}

// UserInfo describes one user for `smarthost user list`.
type UserInfo struct {
	Name string
	// Scheme describes the hash and its cost, e.g. "argon2id
	// m=12288,t=3,p=1" or "bcrypt cost=10"; never the hash itself.
	Scheme string
	// Problem says why the hash cannot be used (the user cannot log in and
	// the server refuses the file), or "".
	Problem string
}

// List returns the users in file order. A line that does not parse is an
// error naming the line; a hash that does not parse is reported in
// [UserInfo.Problem] so `smarthost user passwd` can be suggested.
func (f UsersFile) List() ([]UserInfo, error) {
	src, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("auth: users file: %w", err)
	}
	lines, err := f.parse(string(src))
	if err != nil {
		return nil, err
	}
	var out []UserInfo
	for _, l := range lines {
		if l.name == "" {
			continue
		}
		info := UserInfo{Name: l.name}
		if h, err := parseHash(l.hash); err != nil {
			info.Problem = err.Error()
		} else {
			info.Scheme = h.String()
		}
		out = append(out, info)
	}
	return out, nil
}

// Add adds a user with an argon2id hash of password, creating the file if
// it does not exist (its directory must). It returns an error wrapping
// [ErrUserExists] if the name is taken. name and password are checked with
// [ValidateUserName] and [ValidatePassword].
func (f UsersFile) Add(name, password string) error {
	if err := ValidateUserName(name); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := ValidatePassword(password); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	// Hash before taking the lock: it is the slow part.
	entry := name + ":" + HashPassword(password)
	return f.edit(func(lines []fileLine) ([]fileLine, error) {
		if i := find(lines, name); i >= 0 {
			return nil, fmt.Errorf("%w: %q (line %d)", ErrUserExists, name, i+1)
		}
		return append(lines, fileLine{raw: entry, line: line{name: name}}), nil
	})
}

// SetPassword replaces the user's hash with an argon2id hash of password,
// in place. It returns an error wrapping [ErrUnknownUser] if there is no
// such user.
func (f UsersFile) SetPassword(name, password string) error {
	if err := ValidatePassword(password); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	entry := name + ":" + HashPassword(password)
	return f.edit(func(lines []fileLine) ([]fileLine, error) {
		i := find(lines, name)
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownUser, name)
		}
		lines[i].raw = entry
		return lines, nil
	})
}

// Delete removes the user's line. It returns an error wrapping
// [ErrUnknownUser] if there is no such user.
func (f UsersFile) Delete(name string) error {
	return f.edit(func(lines []fileLine) ([]fileLine, error) {
		i := find(lines, name)
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrUnknownUser, name)
		}
		return append(lines[:i], lines[i+1:]...), nil
	})
}

// fileLine is one line as it is in the file, and what it says.
type fileLine struct {
	raw string
	line
}

func find(lines []fileLine, name string) int {
	for i, l := range lines {
		if l.name == name {
			return i
		}
	}
	return -1
}

// parse splits the file into lines, checking their structure but not their
// hashes. Duplicate names are an error: which of them would an edit mean?
func (f UsersFile) parse(src string) ([]fileLine, error) {
	var out []fileLine
	var errs []error
	for i, raw := range splitLines(src) {
		l, err := parseLine(raw)
		if err == nil && l.name != "" && find(out, l.name) >= 0 {
			err = fmt.Errorf("user %q already defined on line %d; remove one of the lines", l.name, find(out, l.name)+1)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("auth: %s:%d: %w", f.Path, i+1, err))
		}
		out = append(out, fileLine{raw: raw, line: l})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// edit applies change to the file's lines under the directory lock and
// writes the result atomically.
func (f UsersFile) edit(change func([]fileLine) ([]fileLine, error)) (err error) {
	unlock, err := lockDir(filepath.Dir(f.Path))
	if err != nil {
		return fmt.Errorf("auth: lock users file: %w", err)
	}
	defer unlock()
	src, err := os.ReadFile(f.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("auth: users file: %w", err)
	}
	var old fs.FileInfo
	if err == nil {
		if old, err = os.Stat(f.Path); err != nil {
			return fmt.Errorf("auth: users file: %w", err)
		}
	}
	lines, err := f.parse(string(src))
	if err != nil {
		return err
	}
	if lines, err = change(lines); err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return writeFileAtomic(f.Path, []byte(b.String()), old)
}

// writeFileAtomic replaces path with data: temporary file in the same
// directory, fsync, rename, fsync of the directory (without it the rename
// itself may not survive a crash). old is the file being replaced, or nil;
// its owner, group and mode are kept as [UsersFile] describes.
func writeFileAtomic(path string, data []byte, old fs.FileInfo) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("auth: users file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	mode := newFileMode
	if old != nil {
		mode = old.Mode().Perm() & 0o640
		if err := keepOwner(tmp, old); err != nil {
			return fmt.Errorf("auth: users file %s: keep owner: %w; run as root or as the file's owner", path, err)
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("auth: users file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("auth: users file: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("auth: users file: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: users file: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: users file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("auth: users file: fsync %s: %w", dir, err)
	}
	return nil
}

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
