package postfix

import (
	"fmt"
	"strings"
)

// openDKIM is opendkim.conf (opendkim.conf(5)): "Keyword value" lines,
// keywords compared without case, '#' starting a comment.
type openDKIM struct {
	path     string
	found    bool
	readErr  string
	settings map[string]dkimSetting // lower-cased keyword → value
}

type dkimSetting struct {
	keyword, value string
	line           int
}

func (im *importer) readOpenDKIM(path string) {
	if path == "" {
		return
	}
	d := &openDKIM{path: path, settings: map[string]dkimSetting{}}
	im.dkim = d
	src, err := im.r.read(path)
	if err != nil {
		d.readErr = readError(err)
		return
	}
	d.found = true
	for i, line := range strings.Split(src, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		d.settings[strings.ToLower(f[0])] = dkimSetting{keyword: f[0], value: strings.Join(f[1:], " "), line: i + 1}
	}
}

func (d *openDKIM) get(keyword string) (dkimSetting, bool) {
	s, ok := d.settings[strings.ToLower(keyword)]
	return s, ok
}

func (d *openDKIM) yes(keyword string) bool {
	s, _ := d.get(keyword)
	switch strings.ToLower(s.value) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}

// source is the provenance of a setting: "opendkim.conf:12: KeyTable ...".
func (d *openDKIM) source(s dkimSetting) string {
	return fmt.Sprintf("%s:%d: %s %s", baseName(d.path), s.line, s.keyword, s.value)
}

// dataset is an OpenDKIM data set reference: a file of "key value" lines,
// a file of wildcard patterns (refile:), or a comma-separated list.
type dataset struct {
	kind string // "file", "refile", "csl"; anything else cannot be read
	name string
}

func parseDataset(v string) dataset {
	if strings.HasPrefix(v, "/") {
		return dataset{kind: "file", name: v}
	}
	if kind, name, ok := strings.Cut(v, ":"); ok && isTableType(kind) {
		return dataset{kind: strings.ToLower(kind), name: name}
	}
	return dataset{kind: "csl", name: v}
}

// dkimEntry is one line of an OpenDKIM table file: a key and its values.
type dkimEntry struct {
	key    string
	values []string
	where  string // "/etc/opendkim/KeyTable:3"
}

// readDataset reads the entries of a data set. A csl: list gives entries
// without values.
func (im *importer) readDataset(ds dataset) ([]dkimEntry, error) {
	switch ds.kind {
	case "csl":
		var out []dkimEntry
		for _, item := range strings.Split(ds.name, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, dkimEntry{key: item, where: ds.kind + ":" + ds.name})
			}
		}
		return out, nil
	case "file", "refile":
	default:
		return nil, fmt.Errorf("%s: data sets are read from files only", ds.kind)
	}
	src, err := im.r.read(ds.name)
	if err != nil {
		return nil, fmt.Errorf("%s", readError(err))
	}
	var out []dkimEntry
	for i, line := range strings.Split(src, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		out = append(out, dkimEntry{key: f[0], values: f[1:], where: fmt.Sprintf("%s:%d", ds.name, i+1)})
	}
	return out, nil
}

// translateDKIM writes [dkim] and the [[dkim.key]] tables.
func (im *importer) translateDKIM() {
	b := &im.doc.dkim
	b.header = "[dkim]"
	milters := im.milters()
	d := im.dkim
	switch {
	case d == nil && len(milters) > 0:
		im.untranslated(b, strings.Join(milters, "; ")+": OpenDKIM signs here, but no opendkim.conf was given to import (-opendkim FILE); add [[dkim.key]] tables or outbound mail goes unsigned")
		return
	case d == nil:
		return
	case !d.found && len(milters) > 0:
		im.untranslated(b, d.readErr+"; OpenDKIM is used ("+strings.Join(milters, "; ")+"), but its keys cannot be imported; add [[dkim.key]] tables or outbound mail goes unsigned")
		return
	case !d.found:
		b.note(d.readErr + ": no OpenDKIM setup imported; add [[dkim.key]] tables to sign outbound mail.")
		return
	}
	if len(milters) > 0 {
		b.note("imported from " + strings.Join(milters, "; ") + ": OpenDKIM as a milter; smarthost signs by itself with the keys below.")
	} else {
		b.note("No milter setting in main.cf or master.cf uses OpenDKIM, so Postfix did not sign with it; any keys below are imported anyway.")
	}
	if s, ok := d.get("Canonicalization"); ok {
		c := strings.ToLower(s.value)
		if !strings.Contains(c, "/") {
			c += "/simple" // opendkim: one name is the header's; the body's stays simple
		}
		if h, bd, _ := strings.Cut(c, "/"); (h == "relaxed" || h == "simple") && (bd == "relaxed" || bd == "simple") {
			b.set("canonicalization", quote(c), "imported from "+d.source(s))
		} else {
			im.untranslated(b, d.source(s)+": not header/body canonicalization")
		}
	}
	im.dkimNotes(b)
	keys := im.dkimKeys(b)
	if len(keys) > 0 {
		b.note("OpenDKIM's key files are usually readable by the user opendkim only; make them readable by group smarthost, or move them to /etc/smarthost/dkim and change private_key.")
	}
	for _, k := range keys {
		kb := block{header: "[[dkim.key]]", comments: []string{"imported from " + k.source}}
		kb.set("domain", quote(k.domain))
		kb.set("selector", quote(k.selector))
		kb.set("private_key", quote(k.file))
		if len(k.patterns) > 0 {
			kb.set("sign", quoteList(k.patterns), k.signSource...)
		}
		im.doc.dkimKeys = append(im.doc.dkimKeys, kb)
	}
}

// dkimNotes reports opendkim.conf settings whose effect smarthost does not
// reproduce.
func (im *importer) dkimNotes(b *block) {
	d := im.dkim
	if s, ok := d.get("Mode"); ok && !strings.Contains(strings.ToLower(s.value), "s") {
		im.untranslated(b, d.source(s)+": OpenDKIM did not sign; smarthost signs submitted mail whenever a key matches")
	}
	if s, ok := d.get("MultipleSignatures"); ok && d.yes("MultipleSignatures") {
		im.untranslated(b, d.source(s)+": smarthost signs with every matching key of the first matching domain only")
	}
	for _, kw := range []string{"SignHeaders", "OversignHeaders", "SignatureTTL", "BodyLengths"} {
		s, ok := d.get(kw)
		if !ok || kw == "OversignHeaders" && oversignedAnyway(s.value) {
			continue
		}
		im.untranslated(b, d.source(s)+": smarthost signs a fixed set of header fields and oversigns From, Reply-To, Subject, To and Cc, with no expiry and no l= tag")
	}
	for _, kw := range []string{"InternalHosts", "ExternalIgnoreList"} {
		if s, ok := d.get(kw); ok {
			b.note(d.source(s) + ": smarthost signs the mail of logged-in users and trusted_networks on submission listeners.")
		}
	}
}

// oversignedAnyway reports whether every field of an OversignHeaders list
// is one smarthost oversigns (relay/dkim: From, Reply-To, Subject, To, Cc).
func oversignedAnyway(list string) bool {
	for _, f := range strings.Split(strings.ToLower(list), ",") {
		switch strings.TrimSpace(f) {
		case "from", "reply-to", "subject", "to", "cc", "":
		default:
			return false
		}
	}
	return true
}

// milters finds where Postfix hands mail to OpenDKIM (smtpd_milters and
// non_smtpd_milters in main.cf, -o smtpd_milters in master.cf) and returns
// those places; OpenDMARC and other milters are reported in [inbound].
func (im *importer) milters() []string {
	type use struct {
		milter  string
		sources []string
	}
	var uses []*use
	add := func(source, value string) {
		for _, m := range splitList(value) {
			found := false
			for _, u := range uses {
				if u.milter == m {
					u.sources = appendOnce(u.sources, source)
					found = true
				}
			}
			if !found {
				uses = append(uses, &use{milter: m, sources: []string{source}})
			}
		}
	}
	for _, n := range []string{"smtpd_milters", "non_smtpd_milters"} {
		if im.main.isSet(n) {
			im.handled[n] = true
			add(baseName(im.main.path)+" "+n, im.main.get(n).text)
		}
	}
	for _, n := range im.main.order {
		if strings.HasPrefix(n, "milter_") {
			im.handled[n] = true
		}
	}
	for _, s := range im.services {
		if v, ok := s.overrides["smtpd_milters"]; ok && s.typ == "inet" {
			add(fmt.Sprintf("master.cf:%d %s -o smtpd_milters", s.line, s.name), im.main.expandText(v).text)
		}
	}
	var dkim []string
	for _, u := range uses {
		where := strings.Join(u.sources, ", ") + ": " + u.milter
		switch milterKind(u.milter, im.dkimSocket()) {
		case "opendkim":
			dkim = append(dkim, where)
		case "opendmarc":
			im.doc.inbound.note(where + ": OpenDMARC; smarthost checks DMARC itself on mx listeners (inbound.dmarc, default \"tag\"; \"enforce\" refuses failures under p=reject, as OpenDMARC's RejectFailures does).")
		default:
			im.untranslated(&im.doc.inbound, where+": smarthost runs no milters")
		}
	}
	return dkim
}

// dkimSocket is opendkim.conf's Socket, or "".
func (im *importer) dkimSocket() string {
	if im.dkim == nil {
		return ""
	}
	s, _ := im.dkim.get("Socket")
	return s.value
}

// milterKind recognises a milter by the socket OpenDKIM listens on, or
// by name and conventional port: "opendkim", "opendmarc" or "".
func milterKind(m, dkimSocket string) string {
	m = strings.ToLower(strings.TrimSpace(strings.Trim(m, "{}")))
	m, _, _ = strings.Cut(strings.TrimSpace(m), ",")
	m = strings.TrimSpace(m)
	switch {
	case strings.Contains(m, "opendkim"):
		return "opendkim"
	case strings.Contains(m, "opendmarc"):
		return "opendmarc"
	}
	kind, addr, _ := strings.Cut(m, ":")
	sock := strings.ToLower(dkimSocket)
	switch kind {
	case "inet":
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		switch {
		case strings.HasPrefix(sock, "inet"):
			p, _, _ := strings.Cut(sock[strings.IndexByte(sock, ':')+1:], "@")
			if p == port {
				return "opendkim"
			}
		case port == "8891":
			return "opendkim"
		}
		if port == "8893" {
			return "opendmarc"
		}
	case "unix", "local":
		if sock != "" && baseName(addr) == baseName(strings.TrimPrefix(strings.TrimPrefix(sock, "local:"), "unix:")) {
			return "opendkim"
		}
	}
	return ""
}
