package dnscheck

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"smarthost/relay/resolve"
)

// checkMX checks the domain's MX records (RFC 5321 §5.1): that there are
// some, that each host resolves, and whether one of them is this server.
func (r *run) checkMX() {
	mxs, err := r.res.LookupMX(r.ctx, r.domain)
	switch {
	case resolve.IsNotFound(err) || err == nil && len(mxs) == 0:
		r.noMX()
		return
	case err != nil:
		r.add(lookupFailed(CheckMX, "MX "+r.domain, err))
		return
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	if r.nullMX(mxs) {
		return
	}
	here, unknown := false, false
	for _, mx := range mxs {
		name := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		if _, err := netip.ParseAddr(name); err == nil {
			// RFC 5321 §5.1: the MX names a host; an address there is
			// looked up as a name by most senders, and fails.
			r.add(Finding{Check: CheckMX, Level: LevelError, ID: "mx-host-address",
				Text: fmt.Sprintf("MX %d %s names an address, not a host name (RFC 5321 §5.1)", mx.Pref, name),
				Fix:  fmt.Sprintf("point the MX at a host name with an A record for %s, e.g. %s", name, r.hostHint())})
			continue
		}
		r.mxHosts = append(r.mxHosts, name)
		addrs, err := r.res.LookupNetIP(r.ctx, "ip", name)
		switch {
		case resolve.IsNotFound(err):
			r.add(Finding{Check: CheckMX, Level: LevelError, ID: "mx-host-unresolved",
				Text: fmt.Sprintf("MX %d %s has no A or AAAA record: senders cannot deliver to it", mx.Pref, name),
				Fix:  fmt.Sprintf("publish an A (and AAAA) record for %s, or remove the MX", name)})
			continue
		case err != nil:
			r.add(lookupFailed(CheckMX, "A/AAAA "+name, err))
			unknown = true
			continue
		}
		r.add(Finding{Check: CheckMX, Level: LevelOK, ID: "mx-host",
			Text: fmt.Sprintf("MX %d %s: %s", mx.Pref, name, joinAddrs(addrs))})
		if r.host.name != "" && name == r.host.name {
			here = true
			r.add(Finding{Check: CheckMX, Level: LevelOK, ID: "mx-here",
				Text: fmt.Sprintf("%s is this server (hostname)", name)})
			continue
		}
		for _, a := range addrs {
			if r.host.known() && r.host.has(a) {
				here = true
				r.add(Finding{Check: CheckMX, Level: LevelOK, ID: "mx-here",
					Text: fmt.Sprintf("%s is this server (%s is an address of %s)", name, a, r.host.name)})
				break
			}
		}
	}
	if !here && !unknown && r.host.known() {
		r.add(Finding{Check: CheckMX, Level: LevelWarn, ID: "mx-not-here",
			Text: fmt.Sprintf("no MX of %s points at this server (%s, %s): its mail is received elsewhere", r.domain, r.host.name, joinAddrs(r.host.addrs)),
			Fix:  fmt.Sprintf("if smarthost should receive mail for %s, publish `%s. IN MX 10 %s.` and list it in relay_domains; otherwise ignore this", r.domain, r.domain, r.host.name)})
	}
}

// noMX reports a domain without MX records. RFC 5321 §5.1: senders then
// deliver to the domain's own address (the implicit MX). A domain with
// neither cannot receive mail, bounces to it are lost, and receivers that
// check sender domains (Postfix's reject_unknown_sender_domain) refuse
// its mail.
func (r *run) noMX() {
	addrs, err := r.res.LookupNetIP(r.ctx, "ip", r.domain)
	publish := fmt.Sprintf("publish `%s. IN MX 10 %s.`", r.domain, r.hostHint())
	switch {
	case err == nil:
		r.add(Finding{Check: CheckMX, Level: LevelWarn, ID: "mx-implicit",
			Text: fmt.Sprintf("no MX record: senders deliver to the address of %s itself (%s), RFC 5321 §5.1", r.domain, joinAddrs(addrs)),
			Fix:  publish})
	case resolve.IsNotFound(err):
		r.add(Finding{Check: CheckMX, Level: LevelError, ID: "mx-missing",
			Text: fmt.Sprintf("no MX and no A/AAAA record: %s cannot receive mail (bounces and replies are lost) and receivers checking the sender domain refuse its mail", r.domain),
			Fix:  publish})
	default:
		r.add(lookupFailed(CheckMX, "A/AAAA "+r.domain, err))
	}
}

// nullMX reports a null MX (RFC 7505), and whether there is one.
func (r *run) nullMX(mxs []*net.MX) bool {
	null := slices.ContainsFunc(mxs, func(mx *net.MX) bool { return mx.Host == "." || mx.Host == "" })
	switch {
	case !null:
		return false
	case len(mxs) > 1:
		r.add(Finding{Check: CheckMX, Level: LevelError, ID: "mx-null-mixed",
			Text: "a null MX (\".\") beside other MX records; RFC 7505 §3 forbids this and senders may treat the domain as receiving no mail",
			Fix:  "remove the null MX if the domain receives mail, or every other MX if it does not"})
	default:
		// RFC 7505 §4.2: a receiver may refuse mail whose envelope
		// sender's domain has a null MX (550 5.7.27), since nothing could
		// be returned to it.
		r.add(Finding{Check: CheckMX, Level: LevelWarn, ID: "mx-null",
			Text: fmt.Sprintf("null MX: %s receives no mail (RFC 7505); receivers may refuse mail with an envelope sender at %s and bounces are lost", r.domain, r.domain),
			Fix:  fmt.Sprintf("if mail from %s goes out through smarthost, replace the null MX with `%s. IN MX 10 %s.`", r.domain, r.domain, r.hostHint())})
	}
	return true
}

// hostHint is the hostname for fix hints, or a placeholder without one.
func (r *run) hostHint() string {
	if r.host.name != "" {
		return r.host.name
	}
	return "mail." + r.domain
}
