package inbound

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve"
)

// maxFromDomains is how many distinct From domains a message may have
// before DMARC gives up on it (see fromDomains). Each costs up to two DNS
// lookups.
const maxFromDomains = 4

// fromResult is what the From field(s) of a message give DMARC.
type fromResult struct {
	domains []string // distinct, lower-case A-labels, in order
	// problem is set when DMARC cannot evaluate (all of) the From
	// field(s): "no From field", "unparseable From", "too many From
	// domains".
	problem string
}

// fromDomains returns the domains DMARC evaluates, the RFC5322.From
// domains (RFC 7489 §3.1).
//
// The mx session does not require exactly one From address (it must not
// refuse mail DMARC does not ask to refuse), so RFC 7489 §6.6.1's odd
// cases reach us and are decided here:
//
//   - No From field: no identifier to evaluate, so dmarc=none
//     (RFC 7489 §11.2: "no aligned identifier could be extracted").
//   - Several From fields, or one with several addresses: if they share
//     one domain it is evaluated once, as §6.6.1 allows. If they do not,
//     each domain is evaluated and the strictest outcome applies: a
//     second From with the sender's own domain must not be a way around
//     the first domain's p=reject (most MUAs show only one of them). With
//     more than maxFromDomains domains nothing is evaluated and the
//     result is permerror; under enforce such a message is refused (see
//     [ErrDMARCReject]), since skipping DMARC for it would again be the
//     way around p=reject, and §6.6.1 notes such mail is "typically
//     rejected".
//   - A From field that does not parse, or an address literal: that
//     field gives permerror (RFC 7489 §11.2, "a permanent error …");
//     domains of the other fields are still evaluated.
func fromDomains(header []byte, fields []field) fromResult {
	addr, err := dkim.ParseFrom(header)
	switch {
	case err == nil:
		if d, ok := addressDomain(addr); ok {
			return fromResult{domains: []string{d}}
		}
		return fromResult{problem: "unparseable From"}
	case errors.Is(err, dkim.ErrNoFrom):
		return fromResult{problem: "no From field"}
	}
	var r fromResult
	parser := &mail.AddressParser{WordDecoder: &mime.WordDecoder{
		// The display name is never used: pass any charset through.
		CharsetReader: func(_ string, in io.Reader) (io.Reader, error) { return in, nil },
	}}
	for _, f := range fields {
		if !f.is("From") {
			continue
		}
		list, err := parser.ParseList(unfold(f.value()))
		if err != nil || len(list) == 0 {
			r.problem = "unparseable From"
			continue
		}
		for _, a := range list {
			d, ok := addressDomain(a.Address)
			switch {
			case !ok:
				r.problem = "unparseable From"
			case !slices.Contains(r.domains, d):
				r.domains = append(r.domains, d)
			}
		}
	}
	if len(r.domains) > maxFromDomains {
		return fromResult{problem: "too many From domains"}
	}
	return r
}

// addressDomain returns the domain of addr as a lower-case A-label name,
// and false for an address literal or a name that is not a domain.
func addressDomain(addr string) (string, bool) {
	_, d, ok := cutLast(addr, "@")
	if !ok {
		return "", false
	}
	return spfDomain(d)
}

// orgDomain returns the Organizational Domain of d (RFC 7489 §3.2): one
// label more than its public suffix, by the Public Suffix List. A name
// that is itself a public suffix is its own.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether an authenticated domain is aligned with the From
// domain (RFC 7489 §3.1): the same name in strict mode, the same
// Organizational Domain in relaxed mode.
func aligned(authenticated, from string, mode dmarc.AlignmentMode) bool {
	authenticated = strings.ToLower(strings.TrimSuffix(authenticated, "."))
	if mode == dmarc.AlignmentStrict {
		return authenticated == from
	}
	return authenticated != "" && orgDomain(authenticated) == orgDomain(from)
}

// policyRecord is the outcome of DMARC policy discovery for one domain.
type policyRecord struct {
	record *dmarc.Record // nil when there is none, or on error
	at     string        // the domain it was found at
	// result is "" when a record was found, else none, temperror or
	// permerror, with reason.
	result authres.ResultValue
	reason string
}

// discover finds the DMARC record for the From domain d (RFC 7489 §6.6.3):
// _dmarc.<d>, and when there is none, _dmarc.<Organizational Domain>. A
// DNS failure at <d> stops the search: the record there, unknown, would
// have taken precedence.
func discover(ctx context.Context, r resolve.Resolver, d string) policyRecord {
	p := lookupRecord(ctx, r, d)
	if p.result != authres.ResultNone {
		return p
	}
	if org := orgDomain(d); org != d {
		return lookupRecord(ctx, r, org)
	}
	return p
}

// lookupRecord reads the DMARC record at _dmarc.<d>. TXT records not
// starting with v=DMARC1 are discarded; several DMARC records are a
// permerror (§6.6.3 says to apply no DMARC; permerror says why in the
// header, and never refuses).
// A record that does not parse counts as p=none when it has a rua= tag
// and as permerror otherwise: §6.6.3 says this for a bad p= or sp=, and
// we apply it to any syntax error go-msgauth reports.
func lookupRecord(ctx context.Context, r resolve.Resolver, d string) policyRecord {
	txts, err := r.LookupTXT(ctx, "_dmarc."+d)
	switch {
	case resolve.IsNotFound(err):
		return policyRecord{result: authres.ResultNone, reason: "no DMARC record"}
	case err != nil:
		return policyRecord{result: authres.ResultTempError, reason: "DMARC record unavailable"}
	}
	var recs []string
	for _, t := range txts {
		if isDMARC1(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return policyRecord{result: authres.ResultNone, reason: "no DMARC record"}
	case 1:
	default:
		return policyRecord{result: authres.ResultPermError, reason: "multiple DMARC records"}
	}
	rec, err := dmarc.Parse(recs[0])
	if err != nil {
		if !hasTag(recs[0], "rua") {
			return policyRecord{result: authres.ResultPermError, reason: "bad DMARC record"}
		}
		rec = &dmarc.Record{Policy: dmarc.PolicyNone, DKIMAlignment: dmarc.AlignmentRelaxed, SPFAlignment: dmarc.AlignmentRelaxed}
	}
	return policyRecord{record: rec, at: d}
}

// isDMARC1 reports whether a TXT record starts with the v=DMARC1 tag
// (RFC 7489 §6.3: v= must come first; white space around "=" is allowed
// by the tag-value syntax, RFC 6376 §3.2).
func isDMARC1(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	name, val, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(name) == "v" && strings.TrimSpace(val) == "DMARC1"
}

// hasTag reports whether a tag-value list has the named tag.
func hasTag(txt, tag string) bool {
	for _, t := range strings.Split(txt, ";") {
		if name, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(name) == tag {
			return true
		}
	}
	return false
}

// dmarcOutcome is the DMARC result for one From domain.
type dmarcOutcome struct {
	from   string // header.from; "" when there was none
	result authres.ResultValue
	reason string
	// policy is the record's policy for this domain: sp= (or p=) when
	// the record was found at the Organizational Domain, p= when found
	// at the From domain itself (RFC 7489 §6.3, §6.6.3). "" without a
	// record.
	policy dmarc.Policy
	rec    *dmarc.Record
	at     string
	// applied is, for fail and temperror, the policy after pct= sampling
	// (RFC 7489 §6.6.4): what the domain asks us to do with this message.
	// For a temperror of the record lookup, whose policy is unknown, it
	// is reject unless a strictly aligned identifier passed (then no
	// record could make the message fail).
	applied dmarc.Policy
}

// evaluation is what DMARC needs from the SPF and DKIM checks.
type evaluation struct {
	spf  spfOutcome
	dkim []dkimOutcome
	// sample returns a number in [0, 100) for pct= sampling.
	sample func() int
}

// evaluate computes the DMARC result for From domain d with the policy
// found for it (RFC 7489 §4.2, §6.6.2): pass when SPF passed for an
// aligned domain or any DKIM signature passed for an aligned d=.
//
// When neither passed but one of them could not be decided (temperror)
// for an aligned domain, the result is temperror, not fail: RFC 7489 says
// nothing here, but a DNS hiccup must not turn into p=reject (the
// caller answers 451 instead, so the sender retries).
func (e evaluation) evaluate(d string, p policyRecord) dmarcOutcome {
	o := dmarcOutcome{from: d, result: p.result, reason: p.reason, rec: p.record, at: p.at}
	if p.record == nil {
		if o.result == authres.ResultTempError && !e.passes(d, dmarc.AlignmentStrict, dmarc.AlignmentStrict) {
			o.applied = dmarc.PolicyReject
		}
		return o
	}
	o.policy = p.record.Policy
	if p.at != d && p.record.SubdomainPolicy != "" {
		o.policy = p.record.SubdomainPolicy
	}
	switch {
	case e.passes(d, p.record.SPFAlignment, p.record.DKIMAlignment):
		o.result = authres.ResultPass
		return o
	case e.undecided(d, p.record.SPFAlignment, p.record.DKIMAlignment):
		o.result, o.reason = authres.ResultTempError, "aligned identifier temporarily unverifiable"
	default:
		o.result = authres.ResultFail
	}
	o.applied = o.policy
	if pct := p.record.Percent; pct != nil && *pct < 100 && e.sample() >= *pct {
		// RFC 7489 §6.6.4: a message not sampled gets the next policy
		// down.
		switch o.policy {
		case dmarc.PolicyReject:
			o.applied = dmarc.PolicyQuarantine
		case dmarc.PolicyQuarantine:
			o.applied = dmarc.PolicyNone
		}
	}
	return o
}

// passes reports whether SPF or a DKIM signature passed for a domain
// aligned with d.
func (e evaluation) passes(d string, aspf, adkim dmarc.AlignmentMode) bool {
	if e.spf.result == spf.Pass && aligned(e.spf.domain, d, aspf) {
		return true
	}
	for _, k := range e.dkim {
		if k.result == authres.ResultPass && aligned(k.sig.domain, d, adkim) {
			return true
		}
	}
	return false
}

// undecided reports whether SPF or a DKIM signature for a domain aligned
// with d ended in temperror.
func (e evaluation) undecided(d string, aspf, adkim dmarc.AlignmentMode) bool {
	if e.spf.result == spf.TempError && aligned(e.spf.domain, d, aspf) {
		return true
	}
	for _, k := range e.dkim {
		if k.result == authres.ResultTempError && aligned(k.sig.domain, d, adkim) {
			return true
		}
	}
	return false
}
