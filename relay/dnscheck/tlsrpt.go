package dnscheck

import (
	"fmt"
	"strings"

	"smarthost/relay/resolve"
)

// checkTLSRPT checks the domain's TLS reporting record (RFC 8460 §3),
// "v=TLSRPTv1; rua=mailto:…": optional, but the only way to learn that
// senders fail to deliver to you over TLS (it goes with MTA-STS).
func (r *run) checkTLSRPT() {
	name := "_smtp._tls." + r.domain
	txts, err := r.res.LookupTXT(r.ctx, name)
	if err != nil && !resolve.IsNotFound(err) {
		r.add(lookupFailed(CheckTLSRPT, "TXT "+name, err))
		return
	}
	var recs []string
	for _, t := range txts {
		// RFC 8460 §3: records not starting with v=TLSRPTv1 are ignored.
		if v, _, _ := strings.Cut(t, ";"); strings.TrimSpace(v) == "v=TLSRPTv1" {
			recs = append(recs, t)
		}
	}
	example := fmt.Sprintf("`%s. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@%s\"`", name, r.domain)
	switch len(recs) {
	case 0:
		r.add(Finding{Check: CheckTLSRPT, Level: LevelInfo, ID: "tlsrpt-missing",
			Text: "no TLS-RPT record at " + name + ": you get no reports of senders failing to reach you over TLS",
			Fix:  "optional: publish " + example})
		return
	case 1:
	default:
		r.add(Finding{Check: CheckTLSRPT, Level: LevelWarn, ID: "tlsrpt-multiple",
			Text: fmt.Sprintf("%d TLS-RPT records at %s: senders send no reports (RFC 8460 §3)", len(recs), name),
			Fix:  "keep exactly one"})
		return
	}
	if p := tlsrptProblem(recs[0]); p != "" {
		r.add(Finding{Check: CheckTLSRPT, Level: LevelWarn, ID: "tlsrpt-syntax",
			Text: fmt.Sprintf("%s %q: %s, so senders send no reports", name, recs[0], p),
			Fix:  "publish " + example})
		return
	}
	r.add(Finding{Check: CheckTLSRPT, Level: LevelOK, ID: "tlsrpt-record", Text: fmt.Sprintf("%s: %q", name, recs[0])})
}

// tlsrptProblem checks a TLS-RPT record's rua= (RFC 8460 §3): required,
// a comma-separated list of mailto: or https: URIs.
func tlsrptProblem(txt string) string {
	var rua string
	found := false
	for _, f := range strings.Split(txt, ";")[1:] {
		name, value, ok := strings.Cut(strings.TrimSpace(f), "=")
		if ok && strings.TrimSpace(name) == "rua" {
			rua, found = strings.TrimSpace(value), true
		}
	}
	if !found || rua == "" {
		return "no rua= (RFC 8460 §3 requires it)"
	}
	for _, u := range strings.Split(rua, ",") {
		u = strings.TrimSpace(u)
		scheme, rest, _ := strings.Cut(u, ":")
		if (!strings.EqualFold(scheme, "mailto") && !strings.EqualFold(scheme, "https")) || rest == "" {
			return fmt.Sprintf("rua %q is not a mailto: or https: URI", u)
		}
	}
	return ""
}
