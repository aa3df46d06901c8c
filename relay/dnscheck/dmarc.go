package dnscheck

import (
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"

	"smarthost/relay/resolve"
)

// checkDMARC checks the domain's DMARC record (RFC 7489): where it is,
// its syntax, its policy and reporting, and whether the mail smarthost
// signs for the domain can pass it.
func (r *run) checkDMARC() {
	rec, at := r.discoverDMARC()
	if at == "" {
		return
	}
	where := "_dmarc." + at
	if at != r.domain {
		where += fmt.Sprintf(" (the organizational domain's record; sp= applies to %s)", r.domain)
	}
	r.add(Finding{Check: CheckDMARC, Level: LevelOK, ID: "dmarc-record", Text: fmt.Sprintf("%s: %q", where, rec.text)})
	for _, p := range rec.problems {
		// RFC 7489 §6.6.3: a bad p= makes receivers ignore the record,
		// or apply p=none when it has a valid rua=.
		r.add(Finding{Check: CheckDMARC, Level: LevelError, ID: "dmarc-syntax",
			Text: "syntax error, so receivers may ignore the record: " + p,
			Fix:  "correct the tag (RFC 7489 §6.3)"})
	}
	policy := rec.policy
	if at != r.domain && rec.subdomainPolicy != "" {
		policy = rec.subdomainPolicy
	}
	r.checkDMARCPolicy(rec, policy)
	r.checkDMARCReports(rec, at)
	r.checkDMARCAlignment(rec, policy)
}

// discoverDMARC finds the record that applies to the domain (RFC 7489
// §6.6.3): at _dmarc.<domain>, or else at _dmarc.<organizational domain>.
// It returns the record and the domain it was found at, or reports a
// missing record, several records or a failed lookup and returns "" as
// the domain.
func (r *run) discoverDMARC() (rec dmarcRecord, at string) {
	names := []string{r.domain}
	if org := orgDomain(r.domain); org != r.domain {
		names = append(names, org)
	}
	for _, d := range names {
		txts, err := r.res.LookupTXT(r.ctx, "_dmarc."+d)
		if err != nil && !resolve.IsNotFound(err) {
			// The record here, unknown, would take precedence over one
			// further up: stop.
			r.add(lookupFailed(CheckDMARC, "TXT _dmarc."+d, err))
			return dmarcRecord{}, ""
		}
		var recs []string
		for _, t := range txts {
			if isDMARC1(t) {
				recs = append(recs, t)
			}
		}
		switch len(recs) {
		case 0:
			continue
		case 1:
			return parseDMARC(recs[0]), d
		}
		r.add(Finding{Check: CheckDMARC, Level: LevelError, ID: "dmarc-multiple",
			Text: fmt.Sprintf("%d DMARC records at _dmarc.%s: receivers apply none of them (RFC 7489 §6.6.3)", len(recs), d),
			Fix:  "keep exactly one"})
		return dmarcRecord{}, ""
	}
	r.add(Finding{Check: CheckDMARC, Level: LevelError, ID: "dmarc-missing",
		Text: fmt.Sprintf("no DMARC record at _dmarc.%s: large receivers (Gmail, Yahoo) require one from bulk senders and treat mail without it with suspicion, and you get no reports", strings.Join(names, " or _dmarc.")),
		Fix:  fmt.Sprintf("publish `_dmarc.%s. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\"`, then move to p=quarantine or p=reject once the reports are clean", r.domain, r.domain)})
	return dmarcRecord{}, ""
}

// checkDMARCPolicy reports what receivers do with mail that fails.
func (r *run) checkDMARCPolicy(rec dmarcRecord, policy dmarcPolicy) {
	switch policy {
	case "":
		return // reported as a syntax error
	case policyNone:
		r.add(Finding{Check: CheckDMARC, Level: LevelWarn, ID: "dmarc-policy-none",
			Text: "policy none: receivers only report; mail forged in the name of " + r.domain + " is delivered",
			Fix:  "once the aggregate reports show your own mail passing, move to p=quarantine, then p=reject"})
	default:
		r.add(Finding{Check: CheckDMARC, Level: LevelOK, ID: "dmarc-policy",
			Text: fmt.Sprintf("policy %s: receivers %s mail from %s that fails DMARC", policy, map[dmarcPolicy]string{policyQuarantine: "junk", policyReject: "refuse"}[policy], r.domain)})
	}
	if rec.pct < 100 {
		// RFC 7489 §6.6.4: the rest gets the next policy down.
		r.add(Finding{Check: CheckDMARC, Level: LevelWarn, ID: "dmarc-pct",
			Text: fmt.Sprintf("pct=%d: the policy applies to %d%% of failing mail only", rec.pct, rec.pct),
			Fix:  "raise pct to 100 (or remove it) once the reports are clean"})
	}
}

// checkDMARCReports reports on rua, and checks that an external report
// destination has agreed to receive the reports (RFC 7489 §7.1): without
// <at>._report._dmarc.<destination>, receivers do not send them.
func (r *run) checkDMARCReports(rec dmarcRecord, at string) {
	if len(rec.rua) == 0 {
		r.add(Finding{Check: CheckDMARC, Level: LevelWarn, ID: "dmarc-no-rua",
			Text: "no rua=: you get no aggregate reports, so you cannot see who sends mail as " + r.domain + " or whether it passes",
			Fix:  fmt.Sprintf("add rua=mailto:dmarc-reports@%s", r.domain)})
		return
	}
	for _, u := range rec.rua {
		d := mailtoDomain(u)
		if d == "" || orgDomain(d) == orgDomain(at) {
			continue
		}
		name := at + "._report._dmarc." + d
		txts, err := r.res.LookupTXT(r.ctx, name)
		switch {
		case err != nil && !resolve.IsNotFound(err):
			r.add(lookupFailed(CheckDMARC, "TXT "+name, err))
			continue
		case hasDMARC1(txts):
			continue
		}
		r.add(Finding{Check: CheckDMARC, Level: LevelWarn, ID: "dmarc-rua-unauthorised",
			Text: fmt.Sprintf("rua %s is outside %s and %s has not agreed to receive its reports (no TXT at %s, RFC 7489 §7.1): receivers will not send them", u, at, d, name),
			Fix:  fmt.Sprintf("ask the operator of %s to publish `%s. IN TXT \"v=DMARC1\"`, or send reports to an address at %s", d, name, at)})
	}
	r.add(Finding{Check: CheckDMARC, Level: LevelOK, ID: "dmarc-rua",
		Text: "aggregate reports go to " + strings.Join(rec.rua, ", ")})
}

// hasDMARC1 reports whether one of txts is a DMARC record.
func hasDMARC1(txts []string) bool {
	for _, t := range txts {
		if isDMARC1(t) {
			return true
		}
	}
	return false
}

// checkDMARCAlignment says whether mail smarthost sends for the domain
// can pass DMARC (RFC 7489 §3.1): through DKIM, when a key that signs for
// it has an aligned d=; through SPF, only when the envelope sender is
// aligned too, which depends on the sending system, not on smarthost.
func (r *run) checkDMARCAlignment(rec dmarcRecord, policy dmarcPolicy) {
	var aligned, unaligned []string
	for _, k := range r.keys {
		if alignedDomain(k.Domain, r.domain, rec.adkim) {
			aligned = append(aligned, "d="+k.Domain)
		} else {
			unaligned = append(unaligned, "d="+k.Domain)
		}
	}
	// A policy that acts on failures makes a missing DKIM pass an error:
	// SPF alone breaks as soon as the mail is forwarded.
	level := LevelWarn
	if policy == policyQuarantine || policy == policyReject {
		level = LevelError
	}
	switch {
	case len(aligned) > 0:
		r.add(Finding{Check: CheckDMARC, Level: LevelOK, ID: "dmarc-dkim-aligned",
			Text: fmt.Sprintf("DKIM signatures with %s align with %s (adkim=%s)", strings.Join(aligned, ", "), r.domain, rec.adkim)})
	case len(unaligned) > 0:
		r.add(Finding{Check: CheckDMARC, Level: level, ID: "dmarc-dkim-unaligned",
			Text: fmt.Sprintf("the keys that sign for %s (%s) do not align with it under adkim=%s: DMARC can pass on SPF only, which breaks when mail is forwarded", r.domain, strings.Join(unaligned, ", "), rec.adkim),
			Fix:  fmt.Sprintf("sign with a key whose domain is %s (adkim=s) or under %s (adkim=r)", r.domain, orgDomain(r.domain))})
	default:
		r.add(Finding{Check: CheckDMARC, Level: level, ID: "dmarc-dkim-unaligned",
			Text: fmt.Sprintf("no key signs for %s: DMARC can pass on SPF only, which breaks when mail is forwarded", r.domain),
			Fix:  "configure a DKIM key for " + r.domain + " (see DKIM)"})
	}
	scope := "at " + r.domain
	if rec.aspf == alignRelaxed {
		scope = "at " + orgDomain(r.domain) + " or a name under it"
	}
	r.add(Finding{Check: CheckDMARC, Level: LevelInfo, ID: "dmarc-spf-alignment",
		Text: fmt.Sprintf("SPF counts for DMARC only when the envelope sender (MAIL FROM) is %s (aspf=%s); smarthost relays the envelope sender it is given, so this depends on the sending system", scope, rec.aspf)})
}

// alignedDomain reports whether an authenticated domain is aligned with
// the From domain (RFC 7489 §3.1): the same name under strict alignment,
// the same organizational domain under relaxed.
func alignedDomain(authenticated, from string, mode alignment) bool {
	authenticated = strings.ToLower(strings.TrimSuffix(authenticated, "."))
	if mode == alignStrict {
		return authenticated == from
	}
	return orgDomain(authenticated) == orgDomain(from)
}

// orgDomain returns the organizational domain of d (RFC 7489 §3.2): one
// label below its public suffix, by the Public Suffix List. A name that
// is itself a public suffix is its own.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}
