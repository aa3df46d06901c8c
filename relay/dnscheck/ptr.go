package dnscheck

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"smarthost/relay/resolve"
)

// checkPTR checks forward-confirmed reverse DNS of this server: each
// address of the hostname has a PTR naming a host that resolves back to
// the address, ideally the hostname itself, the name smarthost gives in
// EHLO. Receivers refuse or junk mail from addresses without it (Gmail's
// sender guidelines require it; Postfix has reject_unknown_client_hostname
// and, for the weaker PTR-only test, reject_unknown_reverse_client_hostname).
func (r *run) checkPTR() {
	h := r.host
	switch {
	case h.name == "":
		r.add(Finding{Check: CheckPTR, Level: LevelInfo, ID: "ptr-no-hostname",
			Text: "no hostname configured: reverse DNS of this server not checked"})
		return
	case resolve.IsNotFound(h.err) || h.err == nil && len(h.addrs) == 0:
		r.add(Finding{Check: CheckPTR, Level: LevelError, ID: "host-unresolved",
			Text: fmt.Sprintf("hostname %s has no A or AAAA record: receivers cannot confirm this server's name", h.name),
			Fix:  fmt.Sprintf("publish A (and AAAA) records for %s with this server's public addresses", h.name)})
		return
	case h.err != nil:
		r.add(lookupFailed(CheckPTR, "A/AAAA "+h.name, h.err))
		return
	}
	for _, a := range h.addrs {
		r.checkAddrPTR(a)
	}
}

// checkAddrPTR checks one address of the hostname.
func (r *run) checkAddrPTR(a netip.Addr) {
	h := r.host
	setPTR := fmt.Sprintf("set the reverse DNS (PTR) of %s to %s; it is a setting of whoever provides the address (the VPS panel or support)", a, h.name)
	names, err := r.res.LookupAddr(r.ctx, a.String())
	switch {
	case resolve.IsNotFound(err) || err == nil && len(names) == 0:
		r.add(Finding{Check: CheckPTR, Level: LevelError, ID: "ptr-missing",
			Text: fmt.Sprintf("%s (%s) has no PTR record: many receivers refuse or junk mail from addresses without reverse DNS", a, h.name),
			Fix:  setPTR})
		return
	case err != nil:
		r.add(lookupFailed(CheckPTR, "PTR "+a.String(), err))
		return
	}
	var confirmed []string
	var failed error
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		addrs, err := r.res.LookupNetIP(r.ctx, "ip", n)
		switch {
		case err != nil && !resolve.IsNotFound(err):
			failed = err
		case slices.ContainsFunc(addrs, func(b netip.Addr) bool { return b.Unmap() == a.Unmap() }):
			confirmed = append(confirmed, n)
		}
	}
	shown := strings.Join(trimDots(names), ", ")
	switch {
	case slices.Contains(confirmed, h.name):
		r.add(Finding{Check: CheckPTR, Level: LevelOK, ID: "ptr-ok",
			Text: fmt.Sprintf("%s → %s → %s (forward-confirmed)", a, h.name, a)})
	case len(confirmed) > 0:
		r.add(Finding{Check: CheckPTR, Level: LevelWarn, ID: "ptr-other-name",
			Text: fmt.Sprintf("%s → %s, which resolves back (forward-confirmed) but is not the hostname %s smarthost greets with; receivers comparing the two may score the mail down", a, confirmed[0], h.name),
			Fix:  setPTR + ", or set hostname = " + confirmed[0]})
	case failed != nil:
		r.add(lookupFailed(CheckPTR, "A/AAAA of "+shown, failed))
	default:
		r.add(Finding{Check: CheckPTR, Level: LevelError, ID: "ptr-unconfirmed",
			Text: fmt.Sprintf("%s → %s, which does not resolve back to %s: no forward-confirmed reverse DNS, so receivers treat the name as unknown", a, shown, a),
			Fix:  setPTR})
	}
}

// trimDots returns names without their trailing dots.
func trimDots(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(n, ".")
	}
	return out
}
