package postfix

import (
	"fmt"
	"strings"

	"smarthost/config"
)

// restrictionParams are the smtpd access restriction lists of main.cf, in
// the order smtpd applies them.
var restrictionParams = []string{
	"smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
	"smtpd_relay_restrictions", "smtpd_recipient_restrictions",
	"smtpd_data_restrictions", "smtpd_end_of_data_restrictions",
}

// builtIn are restrictions whose effect smarthost has built in, so they
// need no translation.
var builtIn = map[string]bool{
	"permit_mynetworks":         true, // trusted_networks
	"permit_sasl_authenticated": true, // AUTH on submission listeners
	"reject_unauth_destination": true, // mx listeners take relay_domains only
	"defer_unauth_destination":  true,
	"reject_unlisted_recipient": true, // relay_recipients
	"reject_unlisted_sender":    true,
	"permit":                    true, // the end of a list
	"reject":                    true,
	"permit_auth_destination":   true, // relay_domains on mx listeners
}

// restrictions is what one restriction list says, sorted by what the
// importer can do with it.
type restrictions struct {
	dnsbl         []string // zones of reject_rbl_client
	policies      []string // check_policy_service endpoints
	other         []string // restrictions with no equivalent, with their argument
	loginMismatch bool     // a *_sender_login_mismatch restriction
	verify        bool     // reject_unverified_recipient
}

// takesArgument reports whether restriction r is followed by an argument
// (a table, a DNS zone or a policy server).
func takesArgument(r string) bool {
	switch r {
	case "check_relay_domains":
		return false
	case "reject_rbl_client", "reject_rhsbl_client", "reject_rhsbl_sender", "reject_rhsbl_helo",
		"reject_rhsbl_recipient", "reject_rhsbl_reverse_client", "permit_dnswl_client", "permit_rhswl_client":
		return true
	}
	return strings.HasPrefix(r, "check_")
}

// parseRestrictions sorts the elements of one restriction list.
func parseRestrictions(items []string) restrictions {
	var r restrictions
	for i := 0; i < len(items); i++ {
		tok := strings.ToLower(items[i])
		arg := ""
		if takesArgument(tok) && i+1 < len(items) {
			arg = items[i+1]
			i++
		}
		switch {
		case builtIn[tok]:
		case strings.HasSuffix(tok, "_sender_login_mismatch"):
			r.loginMismatch = true
		case tok == "reject_unverified_recipient":
			r.verify = true
		case tok == "reject_rbl_client" && config.ValidDomain(strings.TrimSuffix(strings.SplitN(arg, "=", 2)[0], ".")):
			r.dnsbl = appendOnce(r.dnsbl, strings.ToLower(strings.TrimSuffix(strings.SplitN(arg, "=", 2)[0], ".")))
			if strings.Contains(arg, "=") {
				r.other = append(r.other, "the reply filter of reject_rbl_client "+arg+" (any listing refuses)")
			}
		case tok == "check_policy_service":
			r.policies = append(r.policies, arg)
		case arg != "":
			r.other = append(r.other, tok+" "+arg)
		default:
			r.other = append(r.other, tok)
		}
	}
	return r
}

// restrictions translates main.cf's restriction lists: DNS blocklists and
// reject_unverified_recipient have equivalents in smarthost, the built-in
// relay policy needs none, and everything else is reported.
func (im *importer) restrictions() {
	in := &im.doc.inbound
	in.header = "[inbound]"
	var dnsbl, sources []string
	for _, name := range restrictionParams {
		if !im.main.isSet(name) {
			continue
		}
		im.handled[name] = true
		src := "imported from " + baseName(im.main.path) + ": " + name + ": "
		items, unknown := im.main.list(name)
		if len(unknown) > 0 {
			im.untranslated(in, unknownNote(im.main.source(name), unknown))
			continue
		}
		r := parseRestrictions(items)
		im.loginMismatch = im.loginMismatch || r.loginMismatch
		if r.verify {
			im.doc.top.set("verify_recipients", "true", src+"reject_unverified_recipient: the next hop (the home server) is asked with a RCPT probe")
		}
		if len(r.dnsbl) > 0 {
			sources = append(sources, src+"reject_rbl_client "+strings.Join(r.dnsbl, ", "))
			for _, z := range r.dnsbl {
				dnsbl = appendOnce(dnsbl, z)
			}
		}
		for _, p := range r.policies {
			im.untranslated(in, fmt.Sprintf("%s: check_policy_service %s: smarthost asks no policy servers%s", name, p, policyHint(p)))
		}
		if len(r.other) > 0 {
			im.untranslated(in, fmt.Sprintf("%s: %s: smarthost has no such checks", name, strings.Join(r.other, ", ")))
		}
	}
	if len(dnsbl) > 0 {
		in.set("dnsbl", quoteList(dnsbl), sources...)
	}
}

// policyHint says what smarthost does instead of a well-known policy
// server, recognised by its name or conventional port.
func policyHint(endpoint string) string {
	e := strings.ToLower(endpoint)
	switch {
	case strings.Contains(e, "spf"):
		return "; it checks SPF itself (inbound.spf, default \"tag\"; \"enforce\" refuses a fail of a -all record, as policyd-spf does by default)"
	case strings.Contains(e, "postgrey") || strings.HasSuffix(e, ":10023"):
		return "; if this is postgrey, set inbound.greylisting = true"
	}
	return ""
}

// overrideRestrictions reports the non-built-in restrictions in a
// service's -o overrides, which smarthost cannot apply per listener.
func (im *importer) overrideRestrictions(s service) []string {
	var out []string
	for _, name := range restrictionParams {
		raw, ok := s.overrides[name]
		if !ok {
			continue
		}
		v := im.main.expandText(raw)
		if len(v.unknown) > 0 {
			out = append(out, fmt.Sprintf("-o %s=%s uses $%s, which main.cf does not define", name, raw, strings.Join(v.unknown, ", $")))
			continue
		}
		r := parseRestrictions(splitList(v.text))
		im.loginMismatch = im.loginMismatch || r.loginMismatch
		rest := append(append([]string{}, r.other...), r.policies...)
		for _, z := range r.dnsbl {
			rest = append(rest, "reject_rbl_client "+z)
		}
		if r.verify {
			rest = append(rest, "reject_unverified_recipient")
		}
		if len(rest) > 0 {
			out = append(out, fmt.Sprintf("-o %s: %s", name, strings.Join(rest, ", ")))
		}
	}
	return out
}
