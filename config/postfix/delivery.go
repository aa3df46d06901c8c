package postfix

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"smarthost/config"
)

// delivery translates the outbound client's settings into [delivery] and
// [delivery.tls_policy].
func (im *importer) delivery() {
	b := &im.doc.delivery
	b.header = "[delivery]"
	if im.relayhost(b) {
		im.relayhostTLS(b)
	} else {
		im.outboundTLS(b)
	}
	if im.main.isSet("maximal_queue_lifetime") {
		src := im.imported("maximal_queue_lifetime")
		d, err := postfixDuration(im.main.get("maximal_queue_lifetime").text, 'd')
		switch {
		case err != nil:
			im.untranslated(b, fmt.Sprintf("%s: %v", im.main.source("maximal_queue_lifetime"), err))
		case d == 0:
			im.untranslated(b, im.main.source("maximal_queue_lifetime")+": 0 means one attempt only in Postfix; smarthost needs a lifetime (default 5d)")
		default:
			b.set("max_lifetime", quote(formatDuration(d)), src)
		}
	}
	im.tlsPolicy()
}

// relayhost translates relayhost. A relay that wants a SASL login is
// written commented out: smarthost's relayhost cannot log in yet, and the
// relay would refuse it. It reports whether it did that.
func (im *importer) relayhost(b *block) (commented bool) {
	im.handled["smtp_tls_wrappermode"] = true
	for _, n := range im.main.order {
		if strings.HasPrefix(n, "smtp_sasl_") {
			im.handled[n] = true
		}
	}
	sasl := im.main.yes("smtp_sasl_auth_enable")
	if pw := im.main.raw("smtp_sasl_password_maps"); pw != "" && (!sasl || !im.main.isSet("relayhost")) {
		im.untranslated(b, "smtp_sasl_password_maps = "+pw+": client-side SASL passwords are not read and have no smarthost equivalent")
	}
	if !im.main.isSet("relayhost") {
		return false
	}
	src := im.imported("relayhost")
	v := im.main.get("relayhost")
	hops := splitList(v.text)
	switch {
	case len(v.unknown) > 0:
		im.untranslated(b, unknownNote(im.main.source("relayhost"), v.unknown))
		return false
	case len(hops) == 0:
		return false
	}
	transport := "smtp"
	if im.main.yes("smtp_tls_wrappermode") {
		transport = "smtps"
		src += " with smtp_tls_wrappermode = yes (implicit TLS)"
	}
	h, err := config.ParseNextHop(transport + ":" + hops[0])
	if err != nil {
		im.untranslated(b, fmt.Sprintf("%s: %v", im.main.source("relayhost"), err))
		return false
	}
	if len(hops) > 1 {
		im.untranslated(b, "relayhost: the relays after the first ("+strings.Join(hops[1:], ", ")+"); smarthost takes one")
	}
	if !sasl {
		b.set("relayhost", quote(h.String()), src)
		return false
	}
	im.untranslated(b, fmt.Sprintf("%s: the relay wants a SASL login (smtp_sasl_auth_enable = yes; the passwords in smtp_sasl_password_maps = %s are not read). smarthost's relayhost cannot send SASL credentials yet and would be refused, so it is left commented out; without it smarthost delivers by MX lookup, which needs outbound port 25", strings.TrimPrefix(src, "imported from "), im.main.raw("smtp_sasl_password_maps")))
	b.note("relayhost = " + quote(h.String()))
	return true
}

// relayhostTLS reports smtp_tls_security_level when the relayhost is left
// commented out: the level was the policy for that one relay, through
// which all mail went, not for delivery by MX, and is not carried over.
func (im *importer) relayhostTLS(b *block) {
	if im.main.isSet("smtp_tls_security_level") {
		im.handled["smtp_tls_security_level"] = true
		im.untranslated(b, im.main.source("smtp_tls_security_level")+": the policy for the relayhost above, through which all mail went; delivery by MX keeps smarthost's default, may")
	}
}

// outboundTLS translates smtp_tls_security_level.
func (im *importer) outboundTLS(b *block) {
	if !im.main.isSet("smtp_tls_security_level") {
		return
	}
	src := im.imported("smtp_tls_security_level")
	lvl := strings.ToLower(im.main.get("smtp_tls_security_level").text)
	tls, note := deliveryTLS(lvl)
	if tls == "" {
		im.untranslated(b, fmt.Sprintf("%s: %s", im.main.source("smtp_tls_security_level"), note))
		return
	}
	if note != "" {
		src += " (" + note + ")"
	}
	b.set("tls", quote(string(tls)), src)
}

// deliveryTLS maps a Postfix TLS security level to smarthost's policy, or
// to "" and the reason it has none.
func deliveryTLS(level string) (config.DeliveryTLS, string) {
	switch level {
	case "may":
		return config.DeliveryTLSMay, ""
	case "encrypt":
		return config.DeliveryTLSEncrypt, ""
	case "verify":
		return config.DeliveryTLSVerify, ""
	case "secure":
		return config.DeliveryTLSVerify, "secure: smarthost's verify checks the certificate against the host it connects to"
	case "", "none":
		return "", "Postfix used no TLS; smarthost always uses STARTTLS when offered (may, its default)"
	case "dane", "dane-only":
		return "", "DANE is not implemented in smarthost; its default, may, applies"
	case "fingerprint":
		return "", "smarthost does not pin certificate fingerprints"
	}
	return "", "unknown level"
}

// tlsPolicy translates smtp_tls_policy_maps into [delivery.tls_policy].
func (im *importer) tlsPolicy() {
	if !im.main.isSet("smtp_tls_policy_maps") {
		return
	}
	b := &im.doc.tlsPolicy
	b.header = "[delivery.tls_policy]"
	src := im.imported("smtp_tls_policy_maps")
	refs, unknown := im.main.list("smtp_tls_policy_maps")
	if len(unknown) > 0 {
		im.untranslated(b, unknownNote(im.main.source("smtp_tls_policy_maps"), unknown))
	}
	seen := map[string]bool{}
	for t := range im.tables("smtp_tls_policy_maps", refs, func(n string) { im.untranslated(b, n) }) {
		comments := []string{src, "from " + t.source + " (" + t.ref.raw + ")"}
		for _, p := range t.problems {
			im.untranslated(b, p)
		}
		for _, e := range t.entries {
			where := fmt.Sprintf("%s: %s %s", t.where(e), e.key, e.value)
			dest := policyDestination(e.key)
			fields := strings.Fields(e.value)
			tls, note := deliveryTLS(strings.ToLower(fields[0]))
			switch {
			case !config.ValidDomain(strings.TrimPrefix(dest, ".")):
				im.untranslated(b, where+": smarthost's policies are per domain or host name")
				continue
			case tls == "":
				im.untranslated(b, where+": "+note)
				continue
			case seen[dest]:
				b.note(where + ": shadowed by an earlier entry for " + dest)
				continue
			}
			seen[dest] = true
			if len(fields) > 1 {
				comments = append(comments, where+": the attributes after the level are not translated")
			} else if note != "" {
				comments = append(comments, where+": "+note)
			}
			b.set(quote(dest), quote(string(tls)), comments...)
			comments = nil
		}
	}
	if len(b.entries) == 0 {
		*b = block{}
	}
}

// policyDestination turns a policy table key ("example.net",
// ".example.net", "[mx.example.net]:25") into a domain or host name.
func policyDestination(k string) string {
	if strings.HasPrefix(k, "[") {
		if end := strings.IndexByte(k, ']'); end > 0 {
			return k[1:end]
		}
	}
	return k
}

// maxDuration bounds time values: ten years is longer than any queue
// lifetime, and small enough for config.ParseDuration.
const maxDuration = 10 * 365 * 24 * time.Hour

// postfixDuration parses a Postfix time value (postconf(5)): a number
// with a unit s, m, h, d or w, or several ("1d12h"); a bare number takes
// the parameter's default unit.
func postfixDuration(s string, unit byte) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, fmt.Errorf("empty time value")
	}
	if s[len(s)-1] >= '0' && s[len(s)-1] <= '9' {
		s += string(unit)
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || units[s[i]] == 0 {
			return 0, fmt.Errorf("not a time value; Postfix writes e.g. 5d, 12h or 30m")
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > int64(maxDuration/units[s[i]]) || total+time.Duration(n)*units[s[i]] > maxDuration {
			return 0, fmt.Errorf("time value too large")
		}
		total += time.Duration(n) * units[s[i]]
		s = s[i+1:]
	}
	return total, nil
}

// formatDuration writes d the way smarthost.toml does: "5d", "1d12h",
// "30m".
func formatDuration(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.size
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
