package dnscheck

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
)

// dmarcRecord is a DMARC record (RFC 7489 §6.3), parsed here rather than
// with go-msgauth's dmarc.Parse for two reasons: a checker must name every
// bad tag and say how to fix it, where dmarc.Parse stops at the first
// error with a message not meant for users, and it needs rua/ruf as
// written (with their "!size" limits) to verify external report
// destinations; and STYLE keeps go-msgauth inside relay/dkim and
// relay/inbound, whose DMARC code (discovery, evaluation) is unexported
// and built for verdicts on messages, not for advice.
type dmarcRecord struct {
	text string
	// policy is p=; "" when the tag is missing or invalid (a problem
	// says which).
	policy dmarcPolicy
	// subdomainPolicy is sp=, "" when absent or invalid.
	subdomainPolicy dmarcPolicy
	// adkim and aspf are the alignment modes, relaxed by default.
	adkim, aspf alignment
	// pct is the percentage of failing mail the policy applies to, 100
	// by default.
	pct int
	// rua and ruf are the report URIs, without "!size" limits.
	rua, ruf []string
	// problems are the syntax errors, each naming its tag.
	problems []string
}

// dmarcPolicy is what a domain asks receivers to do with mail that fails
// DMARC (RFC 7489 §6.3, p= and sp=).
type dmarcPolicy string

const (
	policyNone       dmarcPolicy = "none"
	policyQuarantine dmarcPolicy = "quarantine"
	policyReject     dmarcPolicy = "reject"
)

// Valid reports whether p is one of the three policies.
func (p dmarcPolicy) Valid() bool {
	return p == policyNone || p == policyQuarantine || p == policyReject
}

// alignment is an identifier alignment mode (RFC 7489 §3.1, adkim= and
// aspf=).
type alignment string

const (
	alignRelaxed alignment = "r"
	alignStrict  alignment = "s"
)

// Valid reports whether a is relaxed or strict.
func (a alignment) Valid() bool { return a == alignRelaxed || a == alignStrict }

// isDMARC1 reports whether a TXT record is a DMARC record: its first tag
// is v=DMARC1 (RFC 7489 §6.6.3: other records are discarded).
func isDMARC1(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	name, val, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(name) == "v" && strings.TrimSpace(val) == "DMARC1"
}

// reportSize is the optional size limit after a report URI (RFC 7489
// §6.4: "!" 1*DIGIT [ "k" / "m" / "g" / "t" ]).
var reportSize = regexp.MustCompile(`![0-9]+[kmgtKMGT]?$`)

// parseDMARC parses a record for which isDMARC1 holds. Tag names are
// case-sensitive and values are not (RFC 7489 §6.4 ABNF literals); unknown
// tags are ignored (§6.3); a tag given twice is a problem.
func parseDMARC(txt string) dmarcRecord {
	rec := dmarcRecord{text: txt, adkim: alignRelaxed, aspf: alignRelaxed, pct: 100}
	seen := map[string]bool{}
	for _, spec := range strings.Split(txt, ";") {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		name, value, ok := strings.Cut(spec, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			rec.problems = append(rec.problems, fmt.Sprintf("%q is not tag=value", strings.TrimSpace(spec)))
			continue
		}
		if seen[name] {
			rec.problems = append(rec.problems, fmt.Sprintf("%s= is given twice", name))
			continue
		}
		seen[name] = true
		rec.tag(name, value)
	}
	if !seen["p"] {
		rec.problems = append(rec.problems, "no p= tag, which RFC 7489 §6.3 requires")
	}
	return rec
}

// tag applies one tag to the record.
func (rec *dmarcRecord) tag(name, value string) {
	lower := strings.ToLower(value)
	bad := func(want string) {
		rec.problems = append(rec.problems, fmt.Sprintf("%s=%s is not %s", name, value, want))
	}
	switch name {
	case "p", "sp":
		p := dmarcPolicy(lower)
		if !p.Valid() {
			bad("none, quarantine or reject")
			return
		}
		if name == "p" {
			rec.policy = p
		} else {
			rec.subdomainPolicy = p
		}
	case "adkim", "aspf":
		a := alignment(lower)
		if !a.Valid() {
			bad("r (relaxed) or s (strict)")
			return
		}
		if name == "adkim" {
			rec.adkim = a
		} else {
			rec.aspf = a
		}
	case "pct":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > 100 {
			bad("a whole number from 0 to 100")
			return
		}
		rec.pct = n
	case "rua", "ruf":
		for _, u := range strings.Split(value, ",") {
			u = reportSize.ReplaceAllString(strings.TrimSpace(u), "")
			if p := reportURIProblem(u); p != "" {
				rec.problems = append(rec.problems, fmt.Sprintf("%s=: %s", name, p))
				continue
			}
			if name == "rua" {
				rec.rua = append(rec.rua, u)
			} else {
				rec.ruf = append(rec.ruf, u)
			}
		}
	case "fo":
		for _, o := range strings.Split(lower, ":") {
			if o = strings.TrimSpace(o); o != "0" && o != "1" && o != "d" && o != "s" {
				bad("a colon-separated list of 0, 1, d and s")
				return
			}
		}
	case "ri":
		if _, err := strconv.ParseUint(value, 10, 32); err != nil {
			bad("a number of seconds")
		}
	}
}

// reportURIProblem checks one rua/ruf URI: RFC 7489 §6.2 allows any URI,
// but mailto: is what receivers send to, so that is what is checked
// closely.
func reportURIProblem(u string) string {
	scheme, rest, ok := strings.Cut(u, ":")
	switch {
	case !ok || scheme == "" || rest == "":
		return fmt.Sprintf("%q is not a URI; write mailto:dmarc-reports@example.com", u)
	case !strings.EqualFold(scheme, "mailto"):
		return ""
	}
	if _, err := mail.ParseAddress(rest); err != nil {
		return fmt.Sprintf("%q is not a mailto: URI with one address", u)
	}
	return ""
}

// mailtoDomain returns the domain of a mailto: URI, or "".
func mailtoDomain(u string) string {
	scheme, rest, _ := strings.Cut(u, ":")
	if !strings.EqualFold(scheme, "mailto") {
		return ""
	}
	_, d, _ := strings.Cut(rest, "@")
	d, _ = normalize(d)
	return d
}
