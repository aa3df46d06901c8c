package postfix

import (
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"smarthost/config"
)

// harmlessOverrides are -o options of an smtpd service that need no
// translation: smarthost does the same on every listener, or they only
// change logging.
var harmlessOverrides = map[string]bool{
	"syslog_name":                     true,
	"smtpd_tls_wrappermode":           true, // read for the listener's tls
	"smtpd_tls_security_level":        true, // AUTH only over TLS, always
	"smtpd_tls_auth_only":             true,
	"smtpd_sasl_auth_enable":          true, // read for the listener's role
	"smtpd_sasl_type":                 true, // users are re-added, see [auth]
	"smtpd_sasl_path":                 true,
	"smtpd_sasl_security_options":     true, // PLAIN and LOGIN over TLS only
	"smtpd_sasl_tls_security_options": true,
	"smtpd_reject_unlisted_recipient": true,
	"smtpd_reject_unlisted_sender":    true,
	"milter_macro_daemon_name":        true,
	"local_header_rewrite_clients":    true,
	"smtpd_milters":                   true, // read for OpenDKIM
}

// disabledByEmpty are -o options that, set to nothing, turn off a Postfix
// feature smarthost does not have anyway.
var disabledByEmpty = map[string]bool{
	"content_filter": true, "smtpd_proxy_filter": true, "receive_override_options": true, "smtpd_milters": true,
}

// listeners translates master.cf's smtpd (and postscreen) inet services.
func (im *importer) listeners() {
	if im.services == nil {
		return
	}
	seen := map[string]bool{}
	found := false
	for _, s := range im.services {
		if s.typ != "inet" || (s.command != "smtpd" && s.command != "postscreen") {
			continue
		}
		src := fmt.Sprintf("imported from master.cf:%d: %s", s.line, s.text)
		if v, ok := s.overrides["smtpd_tls_wrappermode"]; ok {
			src += " -o smtpd_tls_wrappermode=" + v
		}
		la, ok := listenAddress(s.name)
		host, port := la.host, la.port
		role := map[int]config.Role{25: config.RoleMX, 587: config.RoleSubmission, 465: config.RoleSubmission}[port]
		var notes []string
		switch {
		case !ok:
			notes = append(notes, fmt.Sprintf("master.cf:%d: %s: unknown service name %q; write the port number", s.line, s.text, s.name))
		case role == "":
			notes = append(notes, fmt.Sprintf("master.cf:%d: %s: a listener on port %d is usually the home server's own (smarthost forwards to it with [transport]) or a content filter's return path, not a role smarthost plays", s.line, s.text, port))
		case host != "" && !validListenHost(host):
			notes = append(notes, fmt.Sprintf("master.cf:%d: %s: %q is not an IP address or host name", s.line, s.text, host))
		}
		if len(notes) > 0 {
			b := block{}
			for _, n := range notes {
				im.untranslated(&b, n)
			}
			im.doc.listeners = append(im.doc.listeners, b)
			continue
		}
		found = true
		fromInterfaces := host == "" && im.main.isSet("inet_interfaces")
		if host == "" {
			host = im.interfaceHost()
		}
		addr := joinHostPort(host, port)
		if seen[addr] {
			continue
		}
		seen[addr] = true
		b := block{header: "[[listener]]", comments: []string{src}}
		if fromInterfaces && host != "" {
			b.comments = append(b.comments, "the address from "+im.main.source("inet_interfaces"))
		}
		tls := config.TLSStartTLS
		if im.main.setting(s, "smtpd_tls_wrappermode").text == "yes" {
			tls = config.TLSImplicit
		} else if port == 465 {
			b.comments = append(b.comments, "Without smtpd_tls_wrappermode = yes Postfix speaks plain SMTP on port 465, where clients expect implicit TLS; consider tls = \"implicit\".")
		}
		base := map[int]string{25: "smtp", 587: "submission", 465: "submissions"}[port]
		name := base
		for n := 2; contains(listenerNames(im.doc.listeners), name); n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		b.set("name", quote(name))
		b.set("address", quote(addr))
		b.set("tls", quote(string(tls)))
		b.set("role", quote(string(role)))
		if role == config.RoleMX && im.main.setting(s, "smtpd_sasl_auth_enable").text == "yes" {
			b.note("Postfix offered AUTH here; smarthost's mx listeners do not: clients log in on 465 or 587.")
		}
		if s.command == "postscreen" {
			b.note("postscreen stands in front of smtpd here; its checks (postscreen_*) are not translated; smarthost's DNS blocklists are inbound.dnsbl.")
		}
		im.serviceOverrides(&b, s)
		im.doc.listeners = append(im.doc.listeners, b)
	}
	if !found {
		b := block{}
		b.note("master.cf has no smtpd listener on port 25, 587 or 465, so none is written; smarthost's default listeners (submissions on :465, smtp on :25) apply unless you add [[listener]] tables.")
		im.doc.listeners = append(im.doc.listeners, b)
	}
}

// validListenHost accepts an IP address without zone or a host name.
func validListenHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	return config.ValidDomain(h)
}

func listenerNames(blocks []block) []string {
	var names []string
	for _, b := range blocks {
		for _, e := range b.entries {
			if e.key == "name" {
				names = append(names, strings.Trim(e.value, `"`))
			}
		}
	}
	return names
}

// serviceOverrides reports a listener's -o options that smarthost cannot
// apply.
func (im *importer) serviceOverrides(b *block, s service) {
	var names []string
	for n := range s.overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	var other []string
	for _, n := range names {
		if !harmlessOverrides[n] && !contains(restrictionParams, n) && !(s.overrides[n] == "" && disabledByEmpty[n]) {
			other = append(other, "-o "+n+"="+s.overrides[n])
		}
	}
	other = append(other, im.overrideRestrictions(s)...)
	if len(other) > 0 {
		im.untranslated(b, fmt.Sprintf("master.cf:%d: %s: %s", s.line, s.name, strings.Join(other, "; ")))
	}
}

// interfaceHost translates inet_interfaces into the host part of listener
// addresses: "" for all, one address when Postfix listened on one.
func (im *importer) interfaceHost() string {
	im.handled["inet_interfaces"] = true
	v := im.main.get("inet_interfaces")
	items := splitList(strings.ToLower(v.text))
	if len(items) == 1 {
		switch items[0] {
		case "all":
			return ""
		case "loopback-only", "localhost":
			return "127.0.0.1"
		}
		if a, err := netip.ParseAddr(strings.Trim(items[0], "[]")); err == nil && a.Zone() == "" {
			return a.String()
		}
	}
	if !im.interfacesNoted {
		im.interfacesNoted = true
		im.untranslated(&im.doc.top, im.main.source("inet_interfaces")+": listeners below listen on every address; give each listener the address to bind")
	}
	return ""
}

// tls translates the server certificate.
func (im *importer) tls() {
	b := &im.doc.tls
	b.header = "[tls]"
	for _, n := range []string{"smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_chain_files"} {
		im.handled[n] = true
	}
	var cert, key string
	var src []string
	if chain, unknown := im.main.list("smtpd_tls_chain_files"); len(chain) > 0 || len(unknown) > 0 {
		src = []string{im.imported("smtpd_tls_chain_files")}
		if len(unknown) > 0 {
			im.untranslated(b, unknownNote(im.main.source("smtpd_tls_chain_files"), unknown))
			return
		}
		cert, key = chain[0], chain[0]
		rest := chain[1:]
		if len(chain) > 1 && looksLikeKey(chain[0]) {
			cert, rest = chain[1], chain[2:]
		}
		if len(rest) > 0 {
			im.untranslated(b, fmt.Sprintf("smtpd_tls_chain_files: %s: smarthost serves one certificate", strings.Join(rest, ", ")))
		}
	} else {
		c, k := im.main.get("smtpd_tls_cert_file"), im.main.get("smtpd_tls_key_file")
		if len(c.unknown)+len(k.unknown) > 0 {
			im.untranslated(b, unknownNote("smtpd_tls_cert_file, smtpd_tls_key_file", append(c.unknown, k.unknown...)))
			return
		}
		cert, key = c.text, k.text
		for _, n := range []string{"smtpd_tls_cert_file", "smtpd_tls_key_file"} {
			if im.main.isSet(n) {
				src = append(src, im.imported(n))
			}
		}
	}
	switch {
	case cert == "":
		b.note("main.cf has no server certificate (smtpd_tls_cert_file or smtpd_tls_chain_files). Set cert_file and key_file, or acme_domains.")
		return
	case !writablePath(cert) || !writablePath(key):
		im.untranslated(b, fmt.Sprintf("the certificate %s and key %s: not absolute paths of plain text (smarthost would read a relative path from the directory of smarthost.toml)", cert, key))
		return
	}
	if strings.Contains(cert, "snakeoil") {
		src = append(src, "This is Debian's self-signed snakeoil certificate; senders and clients will not trust it. Use one from Let's Encrypt (cert_file, key_file) or set acme_domains.")
	}
	src = append(src, "The user smarthost runs as must be able to read both files.")
	b.set("cert_file", quote(cert), src...)
	b.set("key_file", quote(key))
}

// looksLikeKey guesses whether the first of smtpd_tls_chain_files is a
// separate key file (key, then chain) rather than a combined file.
func looksLikeKey(name string) bool {
	n := strings.ToLower(path.Base(name))
	return strings.Contains(n, "key") || strings.Contains(n, "priv")
}

// limits translates message_size_limit and smtpd_recipient_limit.
func (im *importer) limits() {
	b := &im.doc.limits
	b.header = "[limits]"
	if im.main.isSet("message_size_limit") {
		src := im.imported("message_size_limit")
		v := im.main.get("message_size_limit")
		n, err := strconv.ParseInt(strings.TrimSpace(v.text), 10, 64)
		switch {
		case err != nil || n < 0:
			im.untranslated(b, im.main.source("message_size_limit")+": not a number of bytes")
		case n == 0:
			im.untranslated(b, im.main.source("message_size_limit")+": 0 is no limit in Postfix; smarthost needs one (default 50MiB)")
		case n > 1<<40:
			im.untranslated(b, im.main.source("message_size_limit")+": larger than smarthost accepts")
		case n < minLineLength:
			// RFC 5321 §4.5.3.1.6: a line may be 1000 octets; smarthost
			// accepts at least that, so a message may be too.
			im.untranslated(b, im.main.source("message_size_limit")+": smaller than the 1000-octet line smarthost must accept")
		default:
			b.set("max_message_size", quote(formatSize(n)), src)
			if n < config.DefaultMaxLineLength {
				b.set("max_line_length", quote(formatSize(n)), "a line cannot be longer than the message (the default is 64KiB)")
			}
		}
	} else {
		b.note("main.cf does not set message_size_limit: Postfix's default is 10240000 bytes; smarthost's, 50MiB, applies.")
	}
	if im.main.isSet("smtpd_recipient_limit") {
		src := im.imported("smtpd_recipient_limit")
		n, err := strconv.Atoi(strings.TrimSpace(im.main.get("smtpd_recipient_limit").text))
		if err != nil || n < 1 {
			im.untranslated(b, im.main.source("smtpd_recipient_limit")+": not a positive number")
		} else {
			b.set("max_recipients", strconv.Itoa(n), src)
		}
	}
}

// minLineLength is the smallest limits.max_line_length config accepts.
const minLineLength = 1000

// formatSize writes n bytes in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
