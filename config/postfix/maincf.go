package postfix

import (
	"fmt"
	"strings"
)

// logicalLine is one logical line of a Postfix file (main.cf, master.cf or
// a lookup table's source): a line that starts with text, joined with the
// lines starting with white space that continue it.
type logicalLine struct {
	text string
	line int // where it starts, 1-based
}

// logicalLines splits src the way Postfix's readllines does (postconf(5),
// "Syntax"): blank lines and lines whose first non-white-space character
// is '#' are ignored, also between continuation lines; a line starting
// with white space continues the logical line before it. A '#' anywhere
// else is text: main.cf has no end-of-line comments.
func logicalLines(src string) []logicalLine {
	var out []logicalLine
	for i, raw := range strings.Split(src, "\n") {
		raw = strings.TrimRight(raw, "\r")
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' {
			continue
		}
		if (raw[0] == ' ' || raw[0] == '\t') && len(out) > 0 {
			out[len(out)-1].text += " " + t
			continue
		}
		out = append(out, logicalLine{text: t, line: i + 1})
	}
	return out
}

// param is one "name = value" of main.cf.
type param struct {
	raw  string // unexpanded
	line int
}

// mainCF is main.cf's parameters, with the Postfix defaults that values
// may depend on behind them.
type mainCF struct {
	path   string           // on the imported machine, for comments
	params map[string]param // the last definition of each name wins, as in Postfix
	order  []string         // names in the order first defined
	bad    []string         // lines that are not "name = value"
	// used marks parameters that other values refer to ($name), so they
	// count as translated with them.
	used map[string]bool
	// cache holds each parameter's expansion; expanding marks those being
	// expanded, to find loops.
	cache     map[string]value
	expanding map[string]bool
}

// parseMainCF parses main.cf text.
func parseMainCF(path, src string) *mainCF {
	m := &mainCF{path: path, params: map[string]param{}, used: map[string]bool{},
		cache: map[string]value{}, expanding: map[string]bool{}}
	for _, l := range logicalLines(src) {
		name, value, ok := strings.Cut(l.text, "=")
		name = strings.TrimSpace(name)
		if !ok || !isParamName(name) {
			m.bad = append(m.bad, fmt.Sprintf("%s:%d: %q is not a name = value line", baseName(path), l.line, l.text))
			continue
		}
		if _, seen := m.params[name]; !seen {
			m.order = append(m.order, name)
		}
		m.params[name] = param{raw: strings.TrimSpace(value), line: l.line}
	}
	return m
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isSet reports whether main.cf defines name.
func (m *mainCF) isSet(name string) bool {
	_, ok := m.params[name]
	return ok
}

// raw returns the unexpanded value of name as main.cf has it, or "".
func (m *mainCF) raw(name string) string { return m.params[name].raw }

// source is the provenance of name: "main.cf: name = raw value".
func (m *mainCF) source(name string) string {
	return fmt.Sprintf("%s: %s = %s", baseName(m.path), name, m.raw(name))
}

// value is an expanded parameter value. Unknown lists the $names it
// needed that neither main.cf nor the importer's table of Postfix defaults
// defines; a value with unknown names is not to be trusted.
type value struct {
	text    string
	unknown []string
}

// get expands name: main.cf's value, or else Postfix's default.
func (m *mainCF) get(name string) value {
	var v value
	v.text = m.lookup(name, 0, &v.unknown)
	return v
}

// list is get split into list elements (see [splitList]).
func (m *mainCF) list(name string) ([]string, []string) {
	v := m.get(name)
	return splitList(v.text), v.unknown
}

// yes reports whether a boolean parameter is "yes".
func (m *mainCF) yes(name string) bool { return strings.EqualFold(m.get(name).text, "yes") }

// maxExpanded bounds an expanded value: "a = $b$b", "b = $c$c", ... doubles
// with every level.
const maxExpanded = 1 << 16

// lookup expands parameter name; depth is 0 for a value asked for
// directly. A parameter's value does not depend on where it is used, so
// each is expanded once and remembered; a name met again while it is being
// expanded is a loop (Postfix reports those too). So the recursion is at
// most as deep as main.cf has parameters.
func (m *mainCF) lookup(name string, depth int, unknown *[]string) string {
	if depth > 0 && m.isSet(name) {
		m.used[name] = true
	}
	if v, ok := m.cache[name]; ok {
		for _, u := range v.unknown {
			*unknown = appendOnce(*unknown, u)
		}
		return v.text
	}
	if m.expanding[name] {
		*unknown = appendOnce(*unknown, name+" (expansion loop)")
		return ""
	}
	m.expanding[name] = true
	defer delete(m.expanding, name)
	var v value
	if raw, ok := m.params[name]; ok {
		v.text = m.expand(raw.raw, depth+1, &v.unknown)
	} else if def, ok := m.defaultValue(name, depth+1, &v.unknown); ok {
		v.text = m.expand(def, depth+1, &v.unknown)
	} else {
		v.unknown = []string{name}
	}
	m.cache[name] = v
	for _, u := range v.unknown {
		*unknown = appendOnce(*unknown, u)
	}
	return v.text
}

// expandText expands $names in s, as for a value of main.cf or a -o
// override in master.cf.
func (m *mainCF) expandText(s string) value {
	var v value
	v.text = m.expand(s, 1, &v.unknown) // depth 1: the names it uses count as used
	return v
}

// expand does Postfix's $name, ${name}, $(name), ${name?text},
// ${name:text} and $$ substitution (postconf(5), "Parameter
// expansion"). Postfix 3's relational ${{a} op {b} ? ...} form is not
// evaluated; it counts as unknown.
func (m *mainCF) expand(s string, depth int, unknown *[]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if b.Len() > maxExpanded {
			*unknown = appendOnce(*unknown, "(a value longer than 64 KiB)")
			return ""
		}
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{' || next == '(':
			closer := byte('}')
			if next == '(' {
				closer = ')'
			}
			end := matching(s, i+1, next, closer)
			if end < 0 {
				*unknown = appendOnce(*unknown, s[i:]+" (unbalanced)")
				return b.String()
			}
			b.WriteString(m.expandBraced(s[i+2:end], depth, unknown))
			i = end
		case isNameByte(next):
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			b.WriteString(m.lookup(s[i+1:j], depth, unknown))
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// expandBraced expands the inside of ${...}: a name, optionally followed by
// ?text (text when the value is not empty) or :text (text when it is
// empty); text may be wrapped in braces.
func (m *mainCF) expandBraced(in string, depth int, unknown *[]string) string {
	j := 0
	for j < len(in) && isNameByte(in[j]) {
		j++
	}
	name := in[:j]
	if name == "" {
		*unknown = appendOnce(*unknown, "${"+in+"}")
		return ""
	}
	val := m.lookup(name, depth, unknown)
	if j == len(in) {
		return val
	}
	op, text := in[j], strings.TrimSpace(in[j+1:])
	if strings.HasPrefix(text, "{") && strings.HasSuffix(text, "}") {
		text = text[1 : len(text)-1]
	}
	switch {
	case op == '?' && val != "":
		return m.expand(text, depth+1, unknown)
	case op == ':' && val == "":
		return m.expand(text, depth+1, unknown)
	case op == '?' || op == ':':
		return ""
	}
	*unknown = appendOnce(*unknown, "${"+in+"}")
	return ""
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// matching returns the index of the closer matching the opener at s[i],
// or -1.
func matching(s string, i int, opener, closer byte) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case opener:
			depth++
		case closer:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// splitList splits a Postfix list value at commas and white space, keeping
// a {...} group (as in smtpd_milters = { inet:host:port, ... }) as one
// element.
func splitList(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{':
			depth++
		case c == '}' && depth > 0:
			depth--
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			flush()
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	return out
}

// legacyCompat reports whether compatibility_level is below 2, where
// Postfix keeps its old defaults (relay_domains = $mydestination,
// mynetworks_style = subnet), inside an expansion at depth. An unset level
// is 0.
func (m *mainCF) legacyCompat(depth int, unknown *[]string) bool {
	lvl := strings.TrimSpace(m.lookup("compatibility_level", depth, unknown))
	return lvl == "" || lvl == "0" || lvl == "1" || strings.HasPrefix(lvl, "0.") || strings.HasPrefix(lvl, "1.")
}

// defaultValue is Postfix's default (postconf -d, Postfix 3.7) for the
// parameters the importer reads or that values commonly refer to. A
// parameter whose default depends on the machine (myhostname, mynetworks)
// has none here, so a value that needs it is reported as unknown. Defaults
// computed from other parameters continue the expansion at depth, so a
// loop through them ends like any other.
func (m *mainCF) defaultValue(name string, depth int, unknown *[]string) (string, bool) {
	switch name {
	case "mydomain":
		host := m.lookup("myhostname", depth, unknown)
		if _, d, ok := strings.Cut(host, "."); ok && strings.Contains(d, ".") {
			return d, true
		}
		return "", false
	case "relay_domains":
		if m.legacyCompat(depth, unknown) {
			return "$mydestination", true
		}
		return "", true
	case "mynetworks_style":
		if m.legacyCompat(depth, unknown) {
			return "subnet", true
		}
		return "host", true
	}
	d, ok := postfixDefaults[name]
	return d, ok
}

var postfixDefaults = map[string]string{
	"compatibility_level":              "0",
	"config_directory":                 "/etc/postfix",
	"queue_directory":                  "/var/spool/postfix",
	"data_directory":                   "/var/lib/postfix",
	"daemon_directory":                 "/usr/lib/postfix/sbin",
	"command_directory":                "/usr/sbin",
	"meta_directory":                   "/etc/postfix",
	"mail_name":                        "Postfix",
	"mail_owner":                       "postfix",
	"myorigin":                         "$myhostname",
	"mydestination":                    "$myhostname, localhost.$mydomain, localhost",
	"inet_interfaces":                  "all",
	"parent_domain_matches_subdomains": "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
	"relayhost":                        "",
	"relay_transport":                  "relay",
	"default_transport":                "smtp",
	"transport_maps":                   "",
	"relay_recipient_maps":             "",
	"smtpd_sender_login_maps":          "",
	"message_size_limit":               "10240000",
	"smtpd_recipient_limit":            "1000",
	"maximal_queue_lifetime":           "5d",
	"smtp_tls_security_level":          "",
	"smtp_tls_wrappermode":             "no",
	"smtp_tls_policy_maps":             "",
	"smtp_sasl_auth_enable":            "no",
	"smtp_sasl_password_maps":          "",
	"smtpd_tls_security_level":         "",
	"smtpd_tls_wrappermode":            "no",
	"smtpd_tls_cert_file":              "",
	"smtpd_tls_key_file":               "$smtpd_tls_cert_file",
	"smtpd_tls_chain_files":            "",
	"smtpd_sasl_auth_enable":           "no",
	"smtpd_sasl_type":                  "cyrus",
	"smtpd_sasl_path":                  "smtpd",
	"smtpd_milters":                    "",
	"non_smtpd_milters":                "",
	"smtpd_client_restrictions":        "",
	"smtpd_helo_restrictions":          "",
	"smtpd_sender_restrictions":        "",
	"smtpd_relay_restrictions":         "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
	"smtpd_recipient_restrictions":     "",
	"smtpd_data_restrictions":          "",
	"smtpd_end_of_data_restrictions":   "",
	"postscreen_dnsbl_sites":           "",
	"virtual_maps":                     "",
	"virtual_alias_maps":               "$virtual_maps",
	"virtual_alias_domains":            "$virtual_alias_maps",
	"virtual_mailbox_maps":             "",
	"virtual_mailbox_domains":          "$virtual_mailbox_maps",
	"recipient_delimiter":              "",
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
