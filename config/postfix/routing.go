package postfix

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"smarthost/config"
)

// relayRecipients translates relay_recipient_maps: the first table whose
// source file smarthost can read as it is becomes relay_recipients_file;
// the entries of any other go into relay_recipients.
func (im *importer) relayRecipients() {
	if !im.main.isSet("relay_recipient_maps") {
		return
	}
	top := &im.doc.top
	src := im.imported("relay_recipient_maps")
	refs, unknown := im.main.list("relay_recipient_maps")
	if len(unknown) > 0 {
		im.untranslated(top, unknownNote(im.main.source("relay_recipient_maps"), unknown))
		return
	}
	var file string
	var inline, notes []string
	for t := range im.tables("relay_recipient_maps", refs, func(n string) { notes = append(notes, n) }) {
		notes = append(notes, t.problems...)
		var keys []string
		bad := len(t.problems) > 0
		for _, e := range t.entries {
			if !recipientEntry(e.key) {
				notes = append(notes, fmt.Sprintf("%s: %q is not an address or @domain", t.where(e), e.key))
				bad = true
				continue
			}
			keys = append(keys, e.key)
		}
		if file == "" && writablePath(t.source) && !bad && plainLines(t.text) {
			file = t.source
			continue
		}
		inline = append(inline, keys...)
	}
	for _, n := range notes {
		im.untranslated(top, n)
	}
	if file != "" {
		top.set("relay_recipients_file", quote(file), src, "smarthost reads the map's source text as it is (the value column is ignored).")
		src = "more " + src
	}
	if len(inline) > 0 {
		top.set("relay_recipients", quoteList(inline), src)
	}
}

// recipientEntry accepts what relay_recipients takes: local@domain or
// @domain.
func recipientEntry(k string) bool {
	at := strings.LastIndexByte(k, '@')
	return at >= 0 && config.ValidDomain(k[at+1:]) && !strings.ContainsAny(k[:at], " \t<>\"@")
}

// plainLines reports whether a table source has neither continuation
// lines nor lines of more than two fields, so smarthost's recipient file
// reader (one entry and an optional value per line) reads it as postmap
// does.
func plainLines(src string) bool {
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false
		}
		f := strings.Fields(t)
		for i, w := range f {
			if strings.HasPrefix(w, "#") {
				f = f[:i]
				break
			}
		}
		if len(f) > 2 {
			return false
		}
	}
	return true
}

// errNoNextHop marks a transport entry without a next hop, which means an
// MX lookup of the recipient's domain: what smarthost does without an
// entry.
var errNoNextHop = errors.New("no next hop")

// transportReasons say why a Postfix delivery agent has no smarthost
// equivalent, by the command master.cf runs.
var transportReasons = map[string]string{
	"lmtp":    "LMTP delivery (e.g. to Dovecot); smarthost delivers by SMTP only",
	"error":   "mail is refused with an error; smarthost has no error transport",
	"discard": "mail is thrown away; smarthost never discards mail",
	"local":   "local delivery; smarthost delivers no mail locally",
	"virtual": "delivery to virtual mailboxes; smarthost delivers no mail locally",
	"pipe":    "delivery to a program; smarthost runs no programs",
}

// harmlessClientOverrides are -o options of an smtp client service that
// change nothing smarthost does differently.
var harmlessClientOverrides = map[string]bool{"syslog_name": true, "smtp_tls_wrappermode": true}

// translatedHop is a next hop in smarthost's syntax and what its
// translation left out.
type translatedHop struct {
	hop   string   // "smtp:[home.example.com]:10025"
	notes []string // things not carried over
}

// nextHop translates a transport(5) result "transport:nexthop" into a
// smarthost next hop. An empty transport field means fallback, the name
// of a transport.
func (im *importer) nextHop(result, fallback string) (translatedHop, error) {
	var notes []string
	name, nexthop, _ := strings.Cut(result, ":")
	if name == "" {
		name = fallback
	}
	transport := "smtp"
	switch s, ok := transportService(im.services, name); {
	case ok && s.command == "smtp":
		if im.main.setting(s, "smtp_tls_wrappermode").text == "yes" {
			transport = "smtps"
		}
		var other []string
		for k, v := range s.overrides {
			if !harmlessClientOverrides[k] {
				other = append(other, "-o "+k+"="+v)
			}
		}
		sort.Strings(other)
		if len(other) > 0 {
			notes = append(notes, fmt.Sprintf("the options of master.cf's %s service: %s", name, strings.Join(other, " ")))
		}
	case ok && transportReasons[s.command] != "":
		return translatedHop{}, fmt.Errorf("%s", transportReasons[s.command])
	case ok:
		return translatedHop{}, fmt.Errorf("master.cf's %s service runs %s, not smtp", name, s.command)
	case name == "smtp" || name == "relay":
		// Every stock master.cf defines both as the smtp client; a copy
		// that lacks them still means them.
	case transportReasons[name] != "":
		return translatedHop{}, fmt.Errorf("%s", transportReasons[name])
	default:
		return translatedHop{}, fmt.Errorf("master.cf defines no transport %q", name)
	}
	hops := splitList(nexthop)
	if len(hops) == 0 {
		return translatedHop{notes: notes}, errNoNextHop
	}
	if len(hops) > 1 {
		notes = append(notes, "the next hops after the first ("+strings.Join(hops[1:], ", ")+"); smarthost takes one")
	}
	h, err := config.ParseNextHop(transport + ":" + hops[0])
	if err != nil {
		return translatedHop{}, err
	}
	return translatedHop{hop: h.String(), notes: notes}, nil
}

// transport translates transport_maps and a relay_transport with a next
// hop into [transport].
func (im *importer) transport(relayDomains []string) {
	b := &im.doc.transport
	b.header = "[transport]"
	seen := map[string]bool{}
	// An entry with an empty transport field uses relay_transport for
	// relay domains and default_transport for the rest (transport(5)).
	fallback := func(k string) string {
		_, d, _ := strings.Cut(k, "@")
		if d == "" {
			d = k
		}
		def := "default_transport"
		if isRelayDomain(d, relayDomains) {
			def = "relay_transport"
		}
		name, _, _ := strings.Cut(im.main.get(def).text, ":")
		return name
	}
	if im.main.isSet("transport_maps") {
		src := im.imported("transport_maps")
		refs, unknown := im.main.list("transport_maps")
		if len(unknown) > 0 {
			im.untranslated(b, unknownNote(im.main.source("transport_maps"), unknown))
		}
		for t := range im.tables("transport_maps", refs, func(n string) { im.untranslated(b, n) }) {
			comments := []string{src, "from " + t.source + " (" + t.ref.raw + ")"}
			for _, p := range t.problems {
				im.untranslated(b, p)
			}
			for _, e := range t.entries {
				where := fmt.Sprintf("%s: %s %s", t.where(e), e.key, e.value)
				if !transportKey(e.key) {
					im.untranslated(b, where+": not an address, domain, .domain or *")
					continue
				}
				if seen[e.key] {
					b.note(where + ": shadowed by an earlier table, as in Postfix")
					continue
				}
				// Marked even when it cannot be translated: Postfix routes
				// the key here, never by relay_transport.
				seen[e.key] = true
				th, err := im.nextHop(e.value, fallback(e.key))
				switch {
				case errors.Is(err, errNoNextHop):
					b.note(where + ": no next hop, so an MX lookup of the recipient's domain, which is what smarthost does without an entry")
					continue
				case err != nil:
					im.untranslated(b, fmt.Sprintf("%s: %v", where, err))
					continue
				}
				for _, n := range th.notes {
					im.untranslated(b, where+": "+n)
				}
				b.set(quote(e.key), quote(th.hop), comments...)
				comments = nil
			}
		}
	}
	im.relayTransport(b, relayDomains, seen)
	if im.main.isSet("default_transport") {
		im.handled["default_transport"] = true
		v := im.main.get("default_transport")
		if name, nexthop, _ := strings.Cut(v.text, ":"); name != "smtp" || nexthop != "" || len(v.unknown) > 0 {
			im.untranslated(b, im.main.source("default_transport")+": smarthost delivers mail that is not for a relay domain by MX lookup, or to delivery.relayhost")
		}
	}
	if len(b.entries) == 0 {
		*b = block{}
	}
}

// relayTransport routes relay domains that have no transport entry to
// relay_transport's next hop, where it has one.
func (im *importer) relayTransport(b *block, relayDomains []string, seen map[string]bool) {
	if !im.main.isSet("relay_transport") {
		return
	}
	src := im.imported("relay_transport")
	v := im.main.get("relay_transport")
	if len(v.unknown) > 0 {
		im.untranslated(b, unknownNote(im.main.source("relay_transport"), v.unknown))
		return
	}
	th, err := im.nextHop(v.text, "relay")
	switch {
	case errors.Is(err, errNoNextHop):
		return
	case err != nil:
		im.untranslated(b, fmt.Sprintf("%s: %v", im.main.source("relay_transport"), err))
		return
	}
	for _, n := range th.notes {
		im.untranslated(b, im.main.source("relay_transport")+": "+n)
	}
	comments := []string{src + " (for the relay domains without an entry above)"}
	for _, d := range relayDomains {
		if seen[d] {
			continue
		}
		seen[d] = true
		b.set(quote(d), quote(th.hop), comments...)
		comments = nil
	}
}

// isRelayDomain reports whether domain d is one of relayDomains: itself,
// or a subdomain of an entry ".parent" or (Postfix's
// parent_domain_matches_subdomains default) "parent".
func isRelayDomain(d string, relayDomains []string) bool {
	for _, r := range relayDomains {
		parent := "." + strings.TrimPrefix(r, ".")
		if d == r || strings.HasSuffix(d, parent) {
			return true
		}
	}
	return false
}

// transportKey accepts the keys of a transport table: "*", a domain,
// ".domain" or local@domain.
func transportKey(k string) bool {
	if k == "*" {
		return true
	}
	if at := strings.LastIndexByte(k, '@'); at >= 0 {
		return at > 0 && config.ValidDomain(k[at+1:]) && !strings.ContainsAny(k[:at], " \t<>\"")
	}
	return config.ValidDomain(strings.TrimPrefix(k, "."))
}
