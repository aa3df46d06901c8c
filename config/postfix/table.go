package postfix

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
)

// reader reads the imported machine's files. Paths are as that machine
// names them; root is where its file system is found ("" or "/" for this
// machine).
type reader struct {
	root string
}

// local is where path of the imported machine is on this one. Below a
// root, ".." cannot climb out of it.
func (r reader) local(path string) string {
	if r.root == "" || r.root == "/" {
		return path
	}
	return filepath.Join(r.root, filepath.Clean("/"+path))
}

// read returns a file's text. Errors name the file by its path on the
// imported machine.
func (r reader) read(path string) (string, error) {
	b, err := os.ReadFile(r.local(path))
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = path
	}
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (r reader) exists(path string) bool {
	_, err := os.Stat(r.local(path))
	return err == nil
}

// tableRef is a Postfix lookup table reference, "type:name" (see
// DATABASE_README).
type tableRef struct {
	typ  string // "hash"; a proxy: prefix is dropped
	name string // "/etc/postfix/transport"
	raw  string // as written
}

func (t tableRef) String() string { return t.raw }

// parseTableRef recognises "type:name". A list element that is not one
// (a domain, an address, "/file/name", "[::1]/128") gives ok false.
func parseTableRef(s string) (tableRef, bool) {
	typ, name, ok := strings.Cut(s, ":")
	if !ok || typ == "" || name == "" || !isTableType(typ) {
		return tableRef{}, false
	}
	ref := tableRef{typ: strings.ToLower(typ), name: name, raw: s}
	if ref.typ == "proxy" {
		if inner, ok := parseTableRef(name); ok {
			inner.raw = s
			return inner, true
		}
	}
	return ref, true
}

// isTableType reports whether s can be a table type: a letter, then
// letters and digits. IPv6 addresses in lists must be in brackets, so
// "2001:db8::/32" is not mistaken for one by Postfix either; it is
// rejected later as an unknown type.
func isTableType(s string) bool {
	for i, c := range []byte(s) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// tableEntry is one "key value" of a table.
type tableEntry struct {
	key, value string
	line       int
}

// table is the content of a lookup table, read from the text that postmap
// compiles.
type table struct {
	ref     tableRef
	source  string // the file read; "" for inline:
	text    string // the source file's text
	entries []tableEntry
	// problems are lines that are not "key value" and repeated keys
	// (postmap keeps the first), each naming file and line.
	problems []string
}

// where names an entry's place: "/etc/postfix/transport:3".
func (t *table) where(e tableEntry) string {
	if t.source == "" {
		return t.ref.raw
	}
	return fmt.Sprintf("%s:%d", t.source, e.line)
}

// indexedTypes are the table types whose name is a source file that
// postmap compiles into name + suffix.
var indexedTypes = map[string]string{
	"hash": ".db", "btree": ".db", "cdb": ".cdb", "lmdb": ".lmdb", "dbm": ".dir", "sdbm": ".dir",
}

// errNotTranslatable marks a table the importer cannot read, with the
// reason in the message.
var errNotTranslatable = errors.New("not translatable")

// tables yields, in order, each lookup table that param's refs list; an
// item that is not a lookup table or cannot be read goes to note instead,
// as "param: …".
func (im *importer) tables(param string, refs []string, note func(string)) iter.Seq[*table] {
	return func(yield func(*table) bool) {
		for _, item := range refs {
			ref, ok := parseTableRef(item)
			if !ok {
				note(fmt.Sprintf("%s: %s is not a lookup table", param, item))
				continue
			}
			t, err := im.r.readTable(ref)
			if err != nil {
				note(fmt.Sprintf("%s: %s: %v", param, ref, err))
				continue
			}
			if !yield(t) {
				return
			}
		}
	}
}

// readTable reads a table's entries. Keys are lower-cased, as postmap does
// without -f. It reads the source text of hash, btree, cdb, lmdb, dbm and
// sdbm tables (the file without .db), texthash files and inline:{...}.
func (r reader) readTable(ref tableRef) (*table, error) {
	t := &table{ref: ref}
	var src string
	switch suffix, indexed := indexedTypes[ref.typ]; {
	case ref.typ == "inline":
		return t, t.parseInline(ref.name)
	case indexed || ref.typ == "texthash":
		t.source = ref.name
		var err error
		src, err = r.read(ref.name)
		if errors.Is(err, fs.ErrNotExist) && indexed && r.exists(ref.name+suffix) {
			return nil, fmt.Errorf("%w: only the compiled %s%s is there; the importer reads its source text %s", errNotTranslatable, ref.name, suffix, ref.name)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotTranslatable, err)
		}
	case ref.typ == "pcre" || ref.typ == "regexp":
		return nil, fmt.Errorf("%w: %s tables match regular expressions, which smarthost has no equivalent for", errNotTranslatable, ref.typ)
	case ref.typ == "cidr":
		return nil, fmt.Errorf("%w: a cidr table decides per network with actions; list the networks themselves", errNotTranslatable)
	case ref.typ == "static":
		return nil, fmt.Errorf("%w: a static table answers the same for every key", errNotTranslatable)
	default:
		return nil, fmt.Errorf("%w: %s tables live outside the file system the importer reads", errNotTranslatable, ref.typ)
	}
	t.text = src
	seen := map[string]bool{}
	for _, l := range logicalLines(src) {
		key, val, _ := strings.Cut(strings.Join(strings.Fields(l.text), " "), " ")
		key = strings.ToLower(key)
		switch {
		case val == "":
			t.problems = append(t.problems, fmt.Sprintf("%s:%d: %q has no value", t.source, l.line, l.text))
		case seen[key]:
			t.problems = append(t.problems, fmt.Sprintf("%s:%d: %s is listed again; postmap keeps the first", t.source, l.line, key))
		default:
			seen[key] = true
			t.entries = append(t.entries, tableEntry{key: key, value: val, line: l.line})
		}
	}
	return t, nil
}

// parseInline reads inline:{ key=value, { key = value } } (Postfix 3.0).
func (t *table) parseInline(name string) error {
	body := strings.TrimSpace(name)
	if !strings.HasPrefix(body, "{") || !strings.HasSuffix(body, "}") {
		return fmt.Errorf("%w: inline table %q has no {braces}", errNotTranslatable, name)
	}
	for _, item := range splitList(body[1 : len(body)-1]) {
		item = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(item, "{"), "}"))
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			t.problems = append(t.problems, fmt.Sprintf("%s: %q is not key=value", t.ref.raw, item))
			continue
		}
		t.entries = append(t.entries, tableEntry{key: strings.ToLower(strings.TrimSpace(k)), value: strings.TrimSpace(v)})
	}
	return nil
}

// readListFile reads a "/file/name" element of a list (mynetworks,
// relay_domains): its elements, separated by white space or commas, with
// Postfix's comment and continuation rules.
func (r reader) readListFile(path string) ([]string, error) {
	src, err := r.read(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range logicalLines(src) {
		out = append(out, splitList(l.text)...)
	}
	return out, nil
}

// baseName is the last element of a path, for short provenance comments.
func baseName(path string) string { return filepath.Base(path) }
