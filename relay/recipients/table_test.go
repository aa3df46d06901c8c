package recipients

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// files is an in-memory file system for TableSource.ReadFile.
type files map[string]string

func (f files) ReadFile(name string) ([]byte, error) {
	s, ok := f[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

const recipientsFile = `# home users
alice@example.test
Bob@Example.TEST          OK
carol@example.test # the boss

@catchall.test
	dave@other.test.
`

func TestNewTable_Contains(t *testing.T) {
	t.Parallel()
	tab, err := NewTable(TableSource{
		Entries:  []string{"erin@example.test"},
		File:     "/etc/smarthost/recipients",
		ReadFile: files{"/etc/smarthost/recipients": recipientsFile}.ReadFile,
	})
	if err != nil {
		t.Fatalf("NewTable = %v", err)
	}
	if got := tab.Len(); got != 6 {
		t.Errorf("Len() = %d, want 6", got)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"alice@example.test", true},
		{"ALICE@EXAMPLE.TEST", true},
		{"bob@example.test", true},         // listed in capitals, with a value column
		{"carol@example.test", true},       // trailing comment
		{"erin@example.test", true},        // from relay_recipients
		{"dave@other.test", true},          // trailing dot in the entry
		{"dave@other.test.", true},         // and in the address
		{"alice+lists@example.test", true}, // extension
		{"alice+@example.test", true},
		{"+alice@example.test", false}, // no local part before the delimiter
		{"mallory@example.test", false},
		{"mallory+alice@example.test", false},
		{"anyone@catchall.test", true},
		{"anyone@sub.catchall.test", false}, // @domain is that domain only, as in Postfix
		{"alice@other.test", false},
		{"alice", false},
	}
	for _, tt := range tests {
		if got := tab.Contains(tt.addr); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestNewTable_ErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	src := TableSource{
		Entries: []string{"ok@example.test", "no-at-sign"},
		File:    "/etc/smarthost/recipients",
		ReadFile: files{"/etc/smarthost/recipients": "alice@example.test\n" +
			"# fine\n" +
			"bob@\n" +
			"\n" +
			"x@y@example.test\n" +
			"one@example.test two@example.test three@example.test\n" +
			"@bad_domain!.test\n"}.ReadFile,
	}
	_, err := NewTable(src)
	if err == nil {
		t.Fatal("NewTable with bad entries succeeded, want errors")
	}
	for _, want := range []string{
		`recipients: relay_recipients[1]: "no-at-sign" is not an address or @domain`,
		`recipients: /etc/smarthost/recipients:3: "bob@" is not an address or @domain`,
		`recipients: /etc/smarthost/recipients:5: "x@y@example.test" is not`,
		`recipients: /etc/smarthost/recipients:6: "one@example.test two@example.test three@example.test" is not`,
		`recipients: /etc/smarthost/recipients:7: "@bad_domain!.test" is not`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewTable error = %v\nwant it to contain %s", err, want)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 5 {
		t.Errorf("NewTable reported %d problems, want 5 (all of them, in one pass):\n%v", n, err)
	}
}

func TestNewTable_MissingFile(t *testing.T) {
	t.Parallel()
	_, err := NewTable(TableSource{File: "/nowhere", ReadFile: files{}.ReadFile})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/nowhere") {
		t.Errorf("NewTable(missing file) = %v, want fs.ErrNotExist naming /nowhere", err)
	}
}

func TestTable_Empty(t *testing.T) {
	t.Parallel()
	empty, err := NewTable(TableSource{ReadFile: files{"/f": "# nothing yet\n\n"}.ReadFile, File: "/f"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range []*Table{nil, empty} {
		if tab.Configured() || tab.Contains("alice@example.test") || tab.Len() != 0 {
			t.Errorf("%v: Configured %v, Contains %v, Len %d; want false, false, 0", tab, tab.Configured(), tab.Contains("alice@example.test"), tab.Len())
		}
	}
}

// TestCheck_TableOnly: without verification, the table alone decides,
// and no table means every recipient is accepted.
func TestCheck_TableOnly(t *testing.T) {
	t.Parallel()
	tab, err := NewTable(TableSource{Entries: []string{"alice@example.test", "@catchall.test"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		table *Table
		rcpt  string
		want  Result
	}{
		{"listed", tab, "Alice@example.test", Result{Verdict: Accept}},
		{"catch-all", tab, "x@catchall.test", Result{Verdict: Accept}},
		{"not listed", tab, "bob@example.test", Result{Verdict: RejectUnknown, Reason: "not in relay_recipients"}},
		{"no table", nil, "bob@example.test", Result{Verdict: Accept}},
	}
	for _, tt := range tests {
		c := New(Options{Table: tt.table})
		if got := c.Check(context.Background(), tt.rcpt); got != tt.want {
			t.Errorf("%s: Check(%s) = %+v, want %+v", tt.name, tt.rcpt, got, tt.want)
		}
		c.Close()
	}
}
