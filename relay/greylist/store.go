package greylist

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// header is the first line of the state file. Reading does not depend on
// it (every record checks itself); it tells a person what the file is.
const header = "smarthost-greylist 1\n"

// maxLine bounds a line read from the state file; a longer one is damage.
const maxLine = 256

// entry is what is known of a triplet, in Unix seconds.
type entry struct {
	first  int64 // first attempt of the current round
	passed int64 // last recorded pass; 0 when it never passed
}

// store is the state file: an append-only log of records, rewritten from
// memory now and then. It is used under the Greylist's lock.
type store struct {
	fs   FS
	dir  string
	path string

	f       File // append handle; nil after a failed reopen
	records int  // records in the file, live or not
	// torn is true when the file's last line has no newline, so the next
	// append must start with one.
	torn bool
}

// encode writes one record: first, passed, key, and the CRC-32 of those.
func encode(k key, e entry) string {
	body := fmt.Sprintf("%d %d %x", e.first, e.passed, k[:])
	return fmt.Sprintf("%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// decode parses one line without its newline; ok is false for anything
// damaged: wrong shape, bad checksum, impossible times.
func decode(line string) (k key, e entry, ok bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return k, e, false
	}
	body, sum := line[:i], line[i+1:]
	want, err := strconv.ParseUint(sum, 16, 32)
	if err != nil || len(sum) != 8 || uint32(want) != crc32.ChecksumIEEE([]byte(body)) {
		return k, e, false
	}
	f := strings.Fields(body)
	if len(f) != 3 || len(f[2]) != 2*len(k) {
		return k, e, false
	}
	if e.first, err = strconv.ParseInt(f[0], 10, 64); err != nil || e.first <= 0 {
		return k, e, false
	}
	if e.passed, err = strconv.ParseInt(f[1], 10, 64); err != nil || (e.passed != 0 && e.passed < e.first) {
		return k, e, false
	}
	for j := range k {
		b, err := strconv.ParseUint(f[2][2*j:2*j+2], 16, 8)
		if err != nil {
			return k, e, false
		}
		k[j] = byte(b)
	}
	return k, e, true
}

// load reads the file into a map; the last record of a key wins. Damaged
// lines are counted in skipped and otherwise ignored. A missing file is
// an empty state.
func (s *store) load() (entries map[key]entry, skipped int, err error) {
	entries = make(map[key]entry)
	f, err := s.fs.OpenFile(s.path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return entries, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("greylist: open %s: %w", s.path, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, maxLine)
	for n := 0; ; n++ {
		line, err := r.ReadSlice('\n')
		long := false
		for errors.Is(err, bufio.ErrBufferFull) {
			// Too long to be a record: skip to the end of the line.
			long = true
			line, err = r.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("greylist: read %s: %w", s.path, err)
		}
		if long || len(line) > 0 {
			s.torn = len(line) == 0 || line[len(line)-1] != '\n'
			text := strings.TrimSuffix(string(line), "\n")
			k, e, ok := decode(text)
			switch {
			case ok && !long:
				entries[k] = e
				s.records++
			case n == 0 && text+"\n" == header:
			default:
				skipped++
			}
		}
		if err != nil {
			return entries, skipped, nil
		}
	}
}

// add appends one record. It does not fsync; see the package
// documentation.
func (s *store) add(k key, e entry) error {
	if s.f == nil {
		f, err := s.fs.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("greylist: open %s: %w", s.path, err)
		}
		s.f = f
	}
	rec := encode(k, e)
	if s.torn {
		rec = "\n" + rec
	}
	if _, err := io.WriteString(s.f, rec); err != nil {
		// The file may now end in a partial record: start the next one
		// on a new line, so that only this one is lost.
		s.torn = true
		return fmt.Errorf("greylist: append to %s: %w", s.path, err)
	}
	s.torn = false
	s.records++
	return nil
}

// rewrite replaces the file with entries alone: a temporary file,
// written, fsynced and renamed over the old one, then the directory
// fsynced. On failure before the rename the old file stays in use.
func (s *store) rewrite(entries map[key]entry) error {
	tmp := s.path + ".tmp"
	if err := s.writeFile(tmp, entries); err != nil {
		s.fs.Remove(tmp)
		return err
	}
	if err := s.fs.Rename(tmp, s.path); err != nil {
		s.fs.Remove(tmp)
		return fmt.Errorf("greylist: rename %s: %w", tmp, err)
	}
	// The old file is gone from the directory: appends must go to the
	// new one, whatever happens next.
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.records, s.torn = len(entries), false
	var errs []error
	if err := s.syncDir(); err != nil {
		errs = append(errs, err)
	}
	f, err := s.fs.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		errs = append(errs, fmt.Errorf("greylist: open %s: %w", s.path, err))
	} else {
		s.f = f
	}
	return errors.Join(errs...)
}

func (s *store) writeFile(name string, entries map[key]entry) error {
	f, err := s.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("greylist: create %s: %w", name, err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(header)
	for k, e := range entries {
		w.WriteString(encode(k, e))
	}
	err = w.Flush()
	if err != nil {
		f.Close()
		return fmt.Errorf("greylist: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("greylist: fsync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("greylist: close %s: %w", name, err)
	}
	return nil
}

// syncDir makes the rename durable.
func (s *store) syncDir() error {
	d, err := s.fs.OpenFile(s.dir, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("greylist: open directory %s: %w", s.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("greylist: fsync directory %s: %w", s.dir, err)
	}
	return nil
}

// close fsyncs and closes the append handle.
func (s *store) close() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("greylist: close %s: %w", s.path, err)
	}
	return nil
}

func newStore(fsys FS, dir string) *store {
	return &store{fs: fsys, dir: dir, path: filepath.Join(dir, FileName)}
}
