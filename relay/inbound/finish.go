package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dmarc"

	"smarthost/config"
)

// Finish waits for the checks (or ctx), and returns the header fields to
// prepend and the summary for the log. Call it once, after the whole body
// has been written.
//
// The error wraps [ErrSPFFail], [ErrDMARCReject] or [ErrTempFail] when an
// enforced check refuses the message; the Verdict is then still filled in,
// for the log. In tag mode nothing is refused. The rules:
//
//   - SPF enforce: "fail" refuses, "temperror" answers ErrTempFail, unless
//     the message passes DMARC. RFC 7489 §10.1 warns that refusing on SPF
//     before DMARC is evaluated loses mail forwarded with an aligned
//     DKIM signature; at the end of DATA we have DMARC's answer, so a
//     DMARC pass wins.
//   - DMARC enforce: a fail whose policy (sp= for a subdomain of the
//     record's domain, after pct= sampling) is reject refuses; quarantine
//     adds the configured header field instead; none does nothing. A
//     temperror that could have been such a reject answers ErrTempFail.
//     A message with more than maxFromDomains From domains is refused
//     (see fromDomains).
//
// When several apply, a refusal comes before ErrTempFail: a definite
// answer needs no retry. Any other error (ctx done, misuse) is not a
// verdict: the session answers it as a local error. Finish releases
// everything the check holds, whatever it returns.
func (ch *Check) Finish(ctx context.Context) (Verdict, error) {
	if !ch.headerDone || ch.finished || ch.aborted {
		return Verdict{}, errors.New("inbound: Finish before Header, twice, or after Abort")
	}
	if err := ch.wait(ctx); err != nil {
		ch.Abort()
		ch.finished = true
		return Verdict{}, err
	}
	ch.finished = true
	ch.cancel()
	return ch.verdict()
}

// wait waits for every part of the check to end, or for ctx.
func (ch *Check) wait(ctx context.Context) error {
	if ch.verifier != nil {
		if err := ch.verifier.wait(ctx); err != nil {
			return err
		}
	}
	for _, done := range []chan struct{}{ch.spfDone, ch.dmarcDone} {
		if done == nil {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("inbound: %w", ctx.Err())
		}
	}
	return nil
}

// verdict combines the finished checks.
func (ch *Check) verdict() (Verdict, error) {
	c := ch.c
	if !c.active() {
		return Verdict{}, nil
	}
	var (
		v       Verdict
		results []authres.Result
		summary []string
	)
	if c.needSPF() {
		if c.spf != config.CheckOff {
			v.Header = append(v.Header, receivedSPF(ch.spf, ch.env, c.o.Hostname)...)
		}
		r := &authres.SPFResult{Value: authres.ResultValue(ch.spf.result)}
		if ch.spf.identity == "helo" {
			r.Helo = ch.env.Helo
		} else {
			r.From = ch.env.MailFrom
		}
		results = append(results, r)
		summary = append(summary, "spf="+string(ch.spf.result))
	}

	var dkims []dkimOutcome
	if c.needDKIM() {
		if ch.verifier != nil {
			dkims = ch.verifier.outcomes(c.o.Now())
		}
		results = append(results, dkimResults(dkims)...)
		summary = append(summary, "dkim="+dkimSummary(dkims))
	}

	var dmarcs []dmarcOutcome
	if c.dmarc != config.CheckOff {
		e := evaluation{spf: ch.spf, dkim: dkims, sample: func() int { return c.o.Rand(100) }}
		dmarcs = ch.dmarcOutcomes(e)
		var rs []string
		for _, o := range dmarcs {
			results = append(results, dmarcResult(o))
			rs = append(rs, string(o.result))
		}
		summary = append(summary, "dmarc="+strings.Join(rs, ","))
	}
	for _, r := range results {
		cleanParams(r)
	}
	v.Header = append(v.Header, foldField("Authentication-Results", splitTokens(authres.Format(c.o.Hostname, results)))...)

	err := ch.decide(dmarcs)
	var action string
	switch {
	case errors.Is(err, ErrSPFFail), errors.Is(err, ErrDMARCReject):
		action = "reject"
	case errors.Is(err, ErrTempFail):
		action = "tempfail"
	case c.dmarc == config.CheckEnforce && quarantined(dmarcs) && c.quarantine != nil:
		action = "quarantine"
		v.Header = append(v.Header, c.quarantine...)
	}
	if action != "" {
		summary = append(summary, "action="+action)
	}
	v.Summary = strings.Join(summary, " ")
	return v, err
}

// dmarcOutcomes evaluates DMARC for every From domain, and reports the
// From problems fromDomains found.
func (ch *Check) dmarcOutcomes(e evaluation) []dmarcOutcome {
	var out []dmarcOutcome
	for i, d := range ch.from.domains {
		out = append(out, e.evaluate(d, ch.dmarcFound[i]))
	}
	switch ch.from.problem {
	case "":
	case "no From field":
		out = append(out, dmarcOutcome{result: authres.ResultNone, reason: ch.from.problem})
	default:
		out = append(out, dmarcOutcome{result: authres.ResultPermError, reason: ch.from.problem})
	}
	return out
}

// decide returns the refusal the enforced checks ask for, or nil.
func (ch *Check) decide(dmarcs []dmarcOutcome) error {
	c := ch.c
	var spfFail, dmarcReject, temp error
	if c.spf == config.CheckEnforce && !dmarcPassed(dmarcs) {
		switch ch.spf.result {
		case spf.Fail:
			spfFail = fmt.Errorf("%w: %s not permitted for %s", ErrSPFFail, ch.env.ClientIP, ch.spf.sender)
		case spf.TempError:
			temp = fmt.Errorf("%w: spf temperror for %s: %s", ErrTempFail, ch.spf.sender, ch.spf.reason)
		}
	}
	if c.dmarc == config.CheckEnforce {
		if ch.from.problem == "too many From domains" {
			dmarcReject = fmt.Errorf("%w: more than %d From domains", ErrDMARCReject, maxFromDomains)
		}
		for _, o := range dmarcs {
			switch {
			case o.applied != dmarc.PolicyReject:
			case o.result == authres.ResultFail && dmarcReject == nil:
				dmarcReject = fmt.Errorf("%w: %s fails DMARC (policy of %s)", ErrDMARCReject, o.from, o.at)
			case o.result == authres.ResultTempError && temp == nil:
				temp = fmt.Errorf("%w: dmarc temperror for %s: %s", ErrTempFail, o.from, o.reason)
			}
		}
	}
	switch {
	case spfFail != nil:
		return spfFail
	case dmarcReject != nil:
		return dmarcReject
	}
	return temp
}

// dmarcPassed reports whether DMARC was evaluated and every From domain
// passed.
func dmarcPassed(dmarcs []dmarcOutcome) bool {
	for _, o := range dmarcs {
		if o.result != authres.ResultPass {
			return false
		}
	}
	return len(dmarcs) > 0
}

// quarantined reports whether a From domain failing DMARC asks for
// quarantine.
func quarantined(dmarcs []dmarcOutcome) bool {
	for _, o := range dmarcs {
		if o.result == authres.ResultFail && o.applied == dmarc.PolicyQuarantine {
			return true
		}
	}
	return false
}

// dkimResults returns one dkim result per signature (RFC 8601 §2.7.1),
// with header.d, header.i, header.s, header.a and the header.b prefix
// (RFC 6008), or dkim=none for an unsigned message.
func dkimResults(dkims []dkimOutcome) []authres.Result {
	if len(dkims) == 0 {
		return []authres.Result{&authres.DKIMResult{Value: authres.ResultNone}}
	}
	sigs := make([]signature, len(dkims))
	for i, o := range dkims {
		sigs[i] = o.sig
	}
	bs := headerB(sigs)
	out := make([]authres.Result, len(dkims))
	for i, o := range dkims {
		out[i] = &authres.GenericResult{Method: "dkim", Value: o.result, Params: map[string]string{
			"reason":   o.reason,
			"header.d": o.sig.domain,
			"header.i": o.sig.identifier,
			"header.s": o.sig.selector,
			"header.a": o.sig.algorithm,
			"header.b": bs[i],
		}}
	}
	return out
}

func dkimSummary(dkims []dkimOutcome) string {
	if len(dkims) == 0 {
		return string(authres.ResultNone)
	}
	rs := make([]string, len(dkims))
	for i, o := range dkims {
		rs[i] = string(o.result)
	}
	return strings.Join(rs, ",")
}

// dmarcResult is the dmarc result for one From domain: header.from, the
// record's policy as polrec.p and, when the record was found at the
// Organizational Domain, polrec.domain (both registered with IANA by
// DMARCbis); for fail and temperror also policy.dmarc, the policy after
// sp= and pct=, the disposition the domain asks for (named as in earlier
// DMARCbis drafts; consumers ignore properties they do not know,
// RFC 8601 §2.3).
func dmarcResult(o dmarcOutcome) authres.Result {
	p := map[string]string{"reason": o.reason, "header.from": o.from}
	if o.rec != nil {
		p["polrec.p"] = string(o.rec.Policy)
	}
	if o.rec != nil && o.at != o.from {
		p["polrec.domain"] = o.at
	}
	if o.rec != nil && (o.result == authres.ResultFail || o.result == authres.ResultTempError) {
		p["policy.dmarc"] = string(o.applied)
	}
	return &authres.GenericResult{Method: "dmarc", Value: o.result, Params: p}
}

// cleanParams removes control characters from a result's values. Some
// come from the sender (the tags of a DKIM-Signature, MAIL FROM, HELO);
// authres quotes what needs quoting but would copy a CR or LF into the
// field as it is.
func cleanParams(r authres.Result) {
	switch r := r.(type) {
	case *authres.SPFResult:
		r.From, r.Helo = clean(r.From), clean(r.Helo)
	case *authres.GenericResult:
		for k, v := range r.Params {
			r.Params[k] = clean(v)
		}
	}
}

func clean(s string) string {
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return -1
		}
		return c
	}, s)
}
