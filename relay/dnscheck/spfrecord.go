package dnscheck

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// spfRecord is an SPF record split into its terms (RFC 7208 §4.6.1).
type spfRecord struct {
	text  string
	terms []spfTerm
	// problems are the syntax errors, one per bad term; any of them makes
	// receivers return permerror for every message (RFC 7208 §4.6).
	problems []string
}

// spfTerm is one mechanism or modifier.
type spfTerm struct {
	text string // as written
	// qualifier is '+', '-', '~' or '?' for a mechanism, 0 for a modifier.
	qualifier byte
	// name is the mechanism or modifier name, lower-cased.
	name     string
	modifier bool
	// arg is the domain-spec, the IP network, or the modifier's value,
	// without its ":" or "=" and without a CIDR length; "" when absent.
	arg string
}

// mechanism reports whether t is the named mechanism.
func (t spfTerm) mechanism(name string) bool { return !t.modifier && t.name == name }

// isSPF1 reports whether a TXT record is an SPF record: "v=spf1" alone or
// followed by a space (RFC 7208 §4.5). The test ignores case, as
// resolvers' callers commonly do.
func isSPF1(txt string) bool {
	return len(txt) >= 6 && strings.EqualFold(txt[:6], "v=spf1") && (len(txt) == 6 || txt[6] == ' ')
}

// parseSPF parses a record for which isSPF1 holds, following the ABNF of
// RFC 7208 §12. Every term is kept, good or bad, with its problem noted.
func parseSPF(txt string) spfRecord {
	rec := spfRecord{text: txt}
	fields := strings.Fields(txt)
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		t, problem := parseSPFTerm(f)
		if problem != "" {
			rec.problems = append(rec.problems, fmt.Sprintf("%q: %s", f, problem))
		}
		if t.modifier && (t.name == "redirect" || t.name == "exp") {
			// RFC 7208 §6: these two may appear at most once.
			if seen[t.name] {
				rec.problems = append(rec.problems, fmt.Sprintf("%q: a second %s= modifier (RFC 7208 §6 allows one)", f, t.name))
			}
			seen[t.name] = true
		}
		rec.terms = append(rec.terms, t)
	}
	return rec
}

// all returns the record's all mechanism, if it has one.
func (r spfRecord) all() (spfTerm, bool) {
	for _, t := range r.terms {
		if t.mechanism("all") {
			return t, true
		}
	}
	return spfTerm{}, false
}

// modifier returns the value of the named modifier, or "".
func (r spfRecord) modifier(name string) string {
	for _, t := range r.terms {
		if t.modifier && t.name == name {
			return t.arg
		}
	}
	return ""
}

// mechanisms are the mechanism names of RFC 7208 §5.
var mechanisms = map[string]bool{"all": true, "include": true, "a": true, "mx": true, "ptr": true, "ip4": true, "ip6": true, "exists": true}

// modifierName is the ABNF name of RFC 7208 §12.
var modifierName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// dualCIDR splits a trailing dual-cidr-length ("/24", "//64", "/24//64")
// from the rest of an a or mx term.
var dualCIDR = regexp.MustCompile(`^(.*?)(?:/([0-9]+))?(?://([0-9]+))?$`)

// parseSPFTerm parses one term; the string is its problem, "" if none.
func parseSPFTerm(s string) (spfTerm, string) {
	t := spfTerm{text: s}
	// RFC 7208 §4.6.1: a term is a modifier when "=" comes before any ":"
	// or "/" (a mechanism's argument may itself contain "=").
	if i := strings.IndexAny(s, "=:/"); i >= 0 && s[i] == '=' {
		t.modifier = true
		t.name, t.arg = strings.ToLower(s[:i]), s[i+1:]
		switch {
		case mechanisms[t.name]:
			return t, fmt.Sprintf("%s= is read as an unknown modifier and ignored; write %s:%s", t.name, t.name, t.arg)
		case !modifierName.MatchString(t.name):
			return t, "not a mechanism or a modifier"
		case t.name == "redirect" || t.name == "exp":
			letters := macrosDomain
			if t.name == "exp" {
				letters = macrosExp
			}
			return t, checkDomainSpec(t.arg, letters)
		}
		return t, checkMacroString(t.arg, macrosDomain)
	}
	t.qualifier = '+'
	if s != "" && strings.IndexByte("+-~?", s[0]) >= 0 {
		t.qualifier, s = s[0], s[1:]
	}
	name, rest := s, ""
	if i := strings.IndexAny(s, ":/"); i >= 0 {
		name, rest = s[:i], s[i:]
	}
	t.name = strings.ToLower(name)
	arg, hasArg := strings.CutPrefix(rest, ":")
	switch t.name {
	case "all":
		if rest != "" {
			return t, "all takes no argument"
		}
	case "include", "exists":
		t.arg = arg
		if !hasArg || arg == "" {
			return t, t.name + " needs a domain: " + t.name + ":example.com"
		}
		return t, checkDomainSpec(arg, macrosDomain)
	case "ptr":
		if hasArg {
			t.arg = arg
		}
		if rest != "" && (!hasArg || arg == "") {
			return t, "ptr takes an optional :domain and no CIDR length"
		}
		if hasArg {
			return t, checkDomainSpec(arg, macrosDomain)
		}
	case "a", "mx":
		if rest != "" && !hasArg && !strings.HasPrefix(rest, "/") {
			return t, "bad argument"
		}
		m := dualCIDR.FindStringSubmatch(arg)
		if !hasArg {
			m = dualCIDR.FindStringSubmatch(rest)
		}
		t.arg = m[1]
		if !hasArg && t.arg != "" {
			return t, fmt.Sprintf("bad CIDR length %s", t.arg)
		}
		if p := cidrProblem(m[2], 32); p != "" {
			return t, p
		}
		if p := cidrProblem(m[3], 128); p != "" {
			return t, p
		}
		if hasArg {
			if t.arg == "" {
				return t, t.name + ": needs a domain after the colon"
			}
			return t, checkDomainSpec(t.arg, macrosDomain)
		}
	case "ip4", "ip6":
		t.arg = arg
		return t, checkIPNetwork(t.name, rest)
	default:
		return t, "unknown mechanism"
	}
	return t, ""
}

// cidrProblem checks a CIDR length ("" when absent) against its maximum.
func cidrProblem(s string, max int) string {
	if s == "" {
		return ""
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > max || len(s) > 1 && s[0] == '0' {
		return fmt.Sprintf("bad CIDR length /%s (0 to %d)", s, max)
	}
	return ""
}

// checkIPNetwork checks what follows ip4 or ip6, ":" network
// (RFC 7208 §5.6).
func checkIPNetwork(mech, rest string) string {
	arg, hasArg := strings.CutPrefix(rest, ":")
	if !hasArg || arg == "" {
		return mech + " needs an address: " + mech + ":192.0.2.0/24"
	}
	addr, length, hasLen := strings.Cut(arg, "/")
	ip, err := netip.ParseAddr(addr)
	switch {
	case err != nil || ip.Zone() != "":
		return fmt.Sprintf("%q is not an IP address", addr)
	case mech == "ip4" && !ip.Is4():
		return "an IPv6 address in ip4; write ip6:" + arg
	case mech == "ip6" && !ip.Is6():
		return "an IPv4 address in ip6; write ip4:" + arg
	}
	if !hasLen {
		return ""
	}
	if mech == "ip4" {
		return cidrProblem(length, 32)
	}
	return cidrProblem(length, 128)
}

// macroLetters are the macro letters a domain-spec may use.
type macroLetters string

const (
	// macrosDomain are the letters of RFC 7208 §7.2.
	macrosDomain macroLetters = "slodiphv"
	// macrosExp adds c, r and t, allowed only in exp= (§7.3).
	macrosExp = macrosDomain + "crt"
)

// checkDomainSpec checks a domain-spec (RFC 7208 §7.1): a macro-string
// ending in a macro or in "." and a top label that is not all digits.
func checkDomainSpec(s string, letters macroLetters) string {
	if p := checkMacroString(s, letters); p != "" {
		return p
	}
	if s == "" {
		return "needs a domain"
	}
	if strings.HasSuffix(s, "}") {
		return "" // domain-end = macro-expand
	}
	if _, err := netip.ParseAddr(s); err == nil {
		if strings.Contains(s, ":") {
			return "names an address, not a domain; use ip6:" + s
		}
		return "names an address, not a domain; use ip4:" + s
	}
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(labels) < 2 {
		return fmt.Sprintf("%q is not a fully qualified domain", s)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Sprintf("%q has an empty or over-long label", s)
		}
	}
	if top := labels[len(labels)-1]; !validTopLabel(top) {
		return fmt.Sprintf("%q ends in %q, which is not a top-level label", s, top)
	}
	return ""
}

// validTopLabel checks RFC 7208's toplabel: letters, digits and hyphens,
// not all digits, not starting or ending with a hyphen.
func validTopLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	letter := false
	for _, c := range []byte(l) {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9' || c == '-':
		default:
			return false
		}
	}
	return letter || strings.Contains(l, "-")
}

// checkMacroString checks macro syntax (RFC 7208 §7.1): "%{" letter
// digits ["r"] delimiters "}", or "%%", "%_", "%-"; literals are visible
// ASCII.
func checkMacroString(s string, letters macroLetters) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e {
			return "a character outside visible ASCII"
		}
		if c != '%' {
			continue
		}
		if i+1 >= len(s) {
			return "a lone % (write %% for a percent sign)"
		}
		switch s[i+1] {
		case '%', '_', '-':
			i++
			continue
		case '{':
		default:
			return fmt.Sprintf("bad macro %%%c (RFC 7208 §7.1)", s[i+1])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "unclosed macro %{"
		}
		body := s[i+2 : i+end]
		if body == "" || !strings.ContainsRune(string(letters), rune(toLower(body[0]))) {
			return fmt.Sprintf("bad macro %%{%s} (RFC 7208 §7.2 letters: %s)", body, letters)
		}
		rest := strings.TrimLeft(body[1:], "0123456789")
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, "r"), "R")
		if strings.Trim(rest, ".-+,/_=") != "" {
			return fmt.Sprintf("bad macro %%{%s} (RFC 7208 §7.1)", body)
		}
		i += end
	}
	return ""
}

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasMacro reports whether a domain-spec needs macro expansion, which
// depends on the message: such a term is counted but cannot be followed.
func hasMacro(s string) bool { return strings.Contains(s, "%{") }
