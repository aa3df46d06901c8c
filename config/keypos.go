package config

import (
	"strconv"
	"strings"
)

// The TOML decoder knows the line of every key but does not export it, and
// it stops at the first error. To name a line in every problem of one pass we
// scan the file ourselves for where each key is defined. The scanner
// understands what smarthost.toml uses: [table], [[array.of.tables]],
// bare/quoted/dotted keys, and values spanning lines (multi-line strings and
// arrays). A key it cannot place gets line 0 and is reported without one.

// keyPath formats a key path the way problems show it: segments joined with
// dots, a segment quoted when it is not a bare key, array-of-tables elements
// indexed: dkim.key[0].private_key, transport."example.com".
func keyPath(segments ...string) string {
	var b strings.Builder
	for i, s := range segments {
		if strings.HasPrefix(s, "[") { // an index into an array of tables
			b.WriteString(s)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(s))
	}
	return b.String()
}

func quoteKey(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(s)
		}
	}
	return s
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// keyLines maps each key path in src, as [keyPath] formats it, to its
// 1-based line.
func keyLines(src string) map[string]int {
	lines := strings.Split(src, "\n")
	out := make(map[string]int)
	arrays := make(map[string]int) // array-of-tables path → elements seen
	var table []string
	for n := 0; n < len(lines); n++ {
		line := strings.TrimSpace(lines[n])
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "[["):
			name := parseKey(strings.TrimPrefix(line, "[["), "]]")
			p := keyPath(name...)
			i := arrays[p]
			arrays[p] = i + 1
			table = append(append([]string{}, name...), index(i))
			out[keyPath(table...)] = n + 1
			if _, ok := out[p]; !ok {
				out[p] = n + 1
			}
		case line[0] == '[':
			table = rebaseOnArrays(parseKey(line[1:], "]"), arrays)
			out[keyPath(table...)] = n + 1
		default:
			key := parseKey(line, "=")
			if key == nil {
				continue
			}
			out[keyPath(append(append([]string{}, table...), key...)...)] = n + 1
			eq := strings.IndexByte(line, '=')
			n = skipValue(lines, n, line[eq+1:])
		}
	}
	return out
}

// rebaseOnArrays makes [dkim.key.sub] refer to the latest [[dkim.key]]
// element, as TOML does.
func rebaseOnArrays(name []string, arrays map[string]int) []string {
	var out []string
	for _, seg := range name {
		out = append(out, seg)
		if i, ok := arrays[keyPath(out...)]; ok {
			out = append(out, index(i-1))
		}
	}
	return out
}

// parseKey reads a dotted key up to the terminator, unquoting segments.
func parseKey(s, term string) []string {
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				if c == '"' && s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil
			}
			raw := s[i : j+1]
			if c == '"' {
				if u, err := strconv.Unquote(raw); err == nil {
					cur.WriteString(u)
				}
			} else {
				cur.WriteString(raw[1 : len(raw)-1])
			}
			i = j
		case c == '.':
			segs = append(segs, strings.TrimSpace(cur.String()))
			cur.Reset()
		case strings.HasPrefix(s[i:], term):
			return append(segs, strings.TrimSpace(cur.String()))
		default:
			cur.WriteByte(c)
		}
	}
	return nil
}

// skipValue returns the index of the last line of a value that starts with
// rest on line n: multi-line strings and arrays continue past line n.
func skipValue(lines []string, n int, rest string) int {
	v := strings.TrimSpace(rest)
	for _, q := range []string{`"""`, `'''`} {
		if strings.HasPrefix(v, q) {
			if strings.Count(v, q) >= 2 {
				return n
			}
			for m := n + 1; m < len(lines); m++ {
				if strings.Contains(lines[m], q) {
					return m
				}
			}
			return len(lines) - 1
		}
	}
	depth := bracketDepth(v)
	for m := n + 1; depth > 0 && m < len(lines); m++ {
		depth += bracketDepth(lines[m])
		if depth <= 0 {
			return m
		}
	}
	return n
}

// bracketDepth counts unquoted '[' and '{' minus ']' and '}', ignoring
// comments.
func bracketDepth(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return depth
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth
}
