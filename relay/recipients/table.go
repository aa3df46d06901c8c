package recipients

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"smarthost/config"
)

// Delimiter separates a local part from its extension, as Postfix's
// recipient_delimiter: user+tag@example.com is user@example.com's.
const Delimiter = "+"

// TableSource says where a [Table]'s entries come from.
type TableSource struct {
	// Entries are relay_recipients: "user@example.com", or "@example.com"
	// for a whole domain.
	Entries []string
	// File is relay_recipients_file; "" for none. One entry per line;
	// blank lines and lines starting with # are ignored, and # after
	// white space starts a comment. A second column, as in a Postfix
	// relay_recipients map ("user@example.com OK"), is ignored, so such
	// a file can be used as it is.
	File string
	// ReadFile reads File. Default os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// Table is a snapshot of the recipient table. Build it with [NewTable];
// it never changes afterwards and is safe for concurrent use. A
// configuration reload builds a new one. A nil *Table is an empty one.
type Table struct {
	addrs   map[string]bool // "user@example.com"
	domains map[string]bool // "example.com", from "@example.com"
}

// NewTable reads the entries of src. Every malformed entry is reported,
// each naming its place ("/etc/smarthost/recipients:12" or
// "relay_recipients[3]"), in one joined error.
func NewTable(src TableSource) (*Table, error) {
	t := &Table{addrs: map[string]bool{}, domains: map[string]bool{}}
	var errs []error
	for i, e := range src.Entries {
		if err := t.add(e); err != nil {
			errs = append(errs, fmt.Errorf("recipients: relay_recipients[%d]: %w", i, err))
		}
	}
	if src.File != "" {
		read := src.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		data, err := read(src.File)
		if err != nil {
			return nil, fmt.Errorf("recipients: read %s: %w", src.File, err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			entry, ok := parseLine(line)
			if !ok {
				continue
			}
			if err := t.add(entry); err != nil {
				errs = append(errs, fmt.Errorf("recipients: %s:%d: %w", src.File, n+1, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// parseLine returns the entry of one file line, without comment, white
// space and second column; ok is false when there is none.
func parseLine(line string) (entry string, ok bool) {
	line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
	if line == "" || strings.HasPrefix(line, "#") {
		return "", false
	}
	f := strings.Fields(line)
	for i, w := range f {
		if strings.HasPrefix(w, "#") {
			f = f[:i]
			break
		}
	}
	if len(f) > 2 {
		// Two addresses on one line is a mistake, not a value column.
		return line, true
	}
	return f[0], true
}

// add validates and stores one entry.
func (t *Table) add(entry string) error {
	e := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(entry), "."))
	at := strings.LastIndexByte(e, '@')
	if at < 0 || !config.ValidDomain(e[at+1:]) || strings.ContainsAny(e[:at], " \t<>\"@") {
		return fmt.Errorf("%q is not an address or @domain; write e.g. alice@example.com or @example.com", entry)
	}
	if at == 0 {
		t.domains[e[1:]] = true
	} else {
		t.addrs[e] = true
	}
	return nil
}

// Configured reports whether the table has any entry; when it has none,
// it does not restrict recipients.
func (t *Table) Configured() bool {
	return t != nil && len(t.addrs)+len(t.domains) > 0
}

// Len returns the number of distinct entries.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.addrs) + len(t.domains)
}

// Contains reports whether the table lists addr (local@domain): as
// itself, without its +extension, or by its domain's @domain entry —
// Postfix's lookup order for relay_recipient_maps. The comparison ignores
// case. An empty table contains nothing; see [Table.Configured].
func (t *Table) Contains(addr string) bool {
	if !t.Configured() {
		return false
	}
	a := strings.ToLower(addr)
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return false
	}
	local, domain := a[:at], strings.TrimSuffix(a[at+1:], ".")
	if t.addrs[local+"@"+domain] {
		return true
	}
	if i := strings.Index(local, Delimiter); i > 0 && t.addrs[local[:i]+"@"+domain] {
		return true
	}
	return t.domains[domain]
}
