package postfix

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// block is one table of the output ("[tls]", one "[[listener]]", or the
// top level when header is ""), with the comments above its header and its
// entries in order.
type block struct {
	header   string
	comments []string
	entries  []entry
}

// entry is a key = value line with the comments above it, or comments
// alone when key is "".
type entry struct {
	comments []string
	key      string // already quoted where TOML needs it
	value    string // already TOML-encoded
}

// set adds key = value, preceded by comments.
func (b *block) set(key, value string, comments ...string) {
	b.entries = append(b.entries, entry{comments: comments, key: key, value: value})
}

// note adds comment lines.
func (b *block) note(comments ...string) {
	if len(comments) > 0 {
		b.entries = append(b.entries, entry{comments: comments})
	}
}

func (b *block) empty() bool { return len(b.entries) == 0 && len(b.comments) == 0 }

// write renders the block. A table with only comments keeps its header, so
// the comments stand where the setting would go.
func (b *block) write(w *strings.Builder) {
	if b.empty() {
		return
	}
	if w.Len() > 0 {
		w.WriteByte('\n')
	}
	writeComments(w, b.comments)
	if b.header != "" {
		w.WriteString(b.header + "\n")
	}
	for _, e := range b.entries {
		writeComments(w, e.comments)
		if e.key != "" {
			w.WriteString(e.key + " = " + e.value + "\n")
		}
	}
}

// commentWidth is where comment lines are wrapped, to keep the file
// readable in a terminal.
const commentWidth = 78

// writeComments writes each comment as "# " lines, wrapped at white
// space; continuation lines are indented. Text from the imported files is
// made safe for a TOML comment first.
func writeComments(w *strings.Builder, comments []string) {
	for _, c := range comments {
		indent := "# "
		for i, line := range wrap(commentText(c), commentWidth-2) {
			if i == 1 {
				indent = "#   "
			}
			w.WriteString(strings.TrimRight(indent+line, " ") + "\n")
		}
	}
}

// commentText makes s one line of valid UTF-8 without control
// characters, which a TOML comment may not contain (and a newline would
// end the comment and turn the rest into TOML).
func commentText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// wrap breaks s into lines of at most width characters at spaces; a word
// longer than width stands on its own line.
func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Split(s, " ") {
		if cur.Len() > 0 && utf8.RuneCountInString(cur.String())+1+utf8.RuneCountInString(word) > width {
			if len(lines) == 0 {
				width -= 2 // continuation lines are indented by two more
			}
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	return append(lines, cur.String())
}

// writablePath reports whether p can be written into the configuration
// as it is: absolute (smarthost would resolve a relative path against the
// directory of smarthost.toml), valid UTF-8 (TOML text is) and free of
// control characters.
func writablePath(p string) bool {
	if !strings.HasPrefix(p, "/") || !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// quote encodes s as a TOML basic string. Invalid UTF-8 becomes U+FFFD;
// control characters are escaped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteList encodes a TOML array of strings, one element per line when it
// would not fit on one.
func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	one := "[" + strings.Join(q, ", ") + "]"
	if len(one) <= 60 {
		return one
	}
	return "[\n  " + strings.Join(q, ",\n  ") + ",\n]"
}

// key encodes a TOML key: bare when it may be, quoted otherwise.
func key(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return quote(s)
		}
	}
	return s
}
