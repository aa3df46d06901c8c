package dnscheck

import (
	"fmt"
	"io"
	"strings"
)

// Level says how much a [Finding] matters.
type Level string

const (
	// LevelOK: the thing checked is as it should be.
	LevelOK Level = "OK"
	// LevelInfo: worth knowing, nothing to fix (an optional record absent,
	// a step not taken).
	LevelInfo Level = "INFO"
	// LevelWarn: mail flows, but less reliably or less safely than it
	// could; the fix is advised.
	LevelWarn Level = "WARN"
	// LevelError: receivers will refuse, junk or fail to authenticate
	// mail, or the check could not find out (a DNS failure).
	LevelError Level = "ERROR"
)

// Valid reports whether l is one of the defined levels.
func (l Level) Valid() bool {
	return l == LevelOK || l == LevelInfo || l == LevelWarn || l == LevelError
}

// Check names one group of findings, as the report prints it.
type Check string

const (
	// CheckMX: the domain's MX records and their hosts (RFC 5321 §5.1,
	// null MX RFC 7505).
	CheckMX Check = "MX"
	// CheckSPF: the domain's SPF record (RFC 7208).
	CheckSPF Check = "SPF"
	// CheckDKIM: the records of the configured keys that sign for the
	// domain (RFC 6376).
	CheckDKIM Check = "DKIM"
	// CheckDMARC: the domain's DMARC record (RFC 7489).
	CheckDMARC Check = "DMARC"
	// CheckPTR: reverse DNS of this server's hostname, forward-confirmed.
	CheckPTR Check = "PTR"
	// CheckMTASTS: the domain's MTA-STS record and policy (RFC 8461).
	CheckMTASTS Check = "MTA-STS"
	// CheckTLSRPT: the domain's TLS reporting record (RFC 8460).
	CheckTLSRPT Check = "TLS-RPT"
)

// Finding is one line of the report.
type Finding struct {
	Check Check
	Level Level
	// ID names the kind of finding ("spf-plus-all", "dns-temporary"). It
	// is stable across wording changes, so scripts and tests can rely on
	// it; it is not printed.
	ID string
	// Text says what was found, naming the records and addresses involved.
	Text string
	// Fix says what to do about it; "" when there is nothing to do.
	Fix string
}

// String formats the finding as one line: level, check, text and, when
// there is one, the fix after "; fix: " (the shape config problems have).
func (f Finding) String() string {
	s := fmt.Sprintf("%-5s %-7s %s", f.Level, f.Check, f.Text)
	if f.Fix != "" {
		s += "; fix: " + f.Fix
	}
	return s
}

// Report is the outcome of [Checker.Check] for one domain.
type Report struct {
	// Domain is the domain checked, lower-case A-labels.
	Domain string
	// Findings are in the order MX, SPF, DKIM, DMARC, PTR, MTA-STS,
	// TLS-RPT, each group in the order its checks ran.
	Findings []Finding
}

// Count returns how many findings have level l.
func (r Report) Count(l Level) int {
	n := 0
	for _, f := range r.Findings {
		if f.Level == l {
			n++
		}
	}
	return n
}

// WriteTo writes the report, one finding per line and a closing summary
// line, to w.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String() + "\n")
	}
	fmt.Fprintf(&b, "%s: %s, %s\n", r.Domain, plural(r.Count(LevelError), "error"), plural(r.Count(LevelWarn), "warning"))
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// plural formats "1 error", "2 errors".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
