package postfix

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"strings"

	"smarthost/config"
)

// Default locations, as on Debian.
const (
	DefaultPostfixDir   = "/etc/postfix"
	DefaultOpenDKIMConf = "/etc/opendkim.conf"
)

// Options says where the setup to import is.
type Options struct {
	// Root is where the imported machine's file system is found: "" or
	// "/" for this machine, or a directory holding a copy of the old
	// server's files (ROOT/etc/postfix/main.cf, ...). PostfixDir,
	// OpenDKIMConf and every file they name are read below it; the paths
	// written into the result stay as they are on the imported machine.
	Root string
	// PostfixDir holds main.cf and master.cf. Default
	// [DefaultPostfixDir].
	PostfixDir string
	// OpenDKIMConf is opendkim.conf; "" imports no OpenDKIM setup. A file
	// that does not exist is reported in the result, not as an error.
	OpenDKIMConf string
}

// Result is an imported configuration.
type Result struct {
	// TOML is the smarthost.toml text.
	TOML []byte
	// NotTranslated has one line for each "# NOT TRANSLATED" comment in
	// TOML, for a summary.
	NotTranslated []string
}

// Import reads main.cf and master.cf in opts.PostfixDir and, when set,
// opts.OpenDKIMConf with its KeyTable and SigningTable, and translates them
// into smarthost.toml text. It fails only when main.cf cannot be read;
// everything else it cannot read or translate becomes a comment in the
// result. It writes nothing.
func Import(opts Options) (*Result, error) {
	if opts.PostfixDir == "" {
		opts.PostfixDir = DefaultPostfixDir
	}
	im := &importer{r: reader{root: opts.Root}, handled: map[string]bool{}}
	mainPath := path.Join(opts.PostfixDir, "main.cf")
	src, err := im.r.read(mainPath)
	if err != nil {
		return nil, fmt.Errorf("postfix: read main.cf: %w", err)
	}
	im.main = parseMainCF(mainPath, src)
	im.readMasterCF(path.Join(opts.PostfixDir, "master.cf"))
	im.readOpenDKIM(opts.OpenDKIMConf)
	im.translate()
	return &Result{TOML: []byte(im.render()), NotTranslated: im.notTranslated}, nil
}

// importer holds what has been read and the output being built.
type importer struct {
	r          reader
	main       *mainCF
	masterPath string
	services   []service // nil when master.cf could not be read
	dkim       *openDKIM // nil when not imported

	// handled marks main.cf parameters that have been looked at, so the
	// rest can be listed at the end.
	handled map[string]bool
	// loginMismatch is set when a restriction enforces
	// smtpd_sender_login_maps.
	loginMismatch bool
	// interfacesNoted is set once inet_interfaces has been reported as
	// not translated.
	interfacesNoted bool

	doc           document
	notTranslated []string
}

// document is the output, one block per table, in the order of
// systemd/smarthost.toml.
type document struct {
	intro, head, tls    block
	top                 block
	listeners           []block
	auth, senders, dkim block
	dkimKeys            []block
	transport, delivery block
	tlsPolicy, limits   block
	inbound, leftover   block
}

// imported is the provenance comment for main.cf parameter name, which
// it marks as handled.
func (im *importer) imported(name string) string {
	im.handled[name] = true
	return "imported from " + im.main.source(name)
}

// untranslated adds a NOT TRANSLATED comment to b.
func (im *importer) untranslated(b *block, text string) {
	im.notTranslated = append(im.notTranslated, commentText(text))
	b.note("NOT TRANSLATED: " + text)
}

// unknownNote explains a value that refers to $names the importer cannot
// expand.
func unknownNote(src string, unknown []string) string {
	return fmt.Sprintf("%s: uses $%s, which main.cf does not define and whose Postfix default depends on the machine", src, strings.Join(unknown, ", $"))
}

func (im *importer) readMasterCF(p string) {
	im.masterPath = p
	src, err := im.r.read(p)
	if err != nil {
		im.untranslated(&im.doc.head, fmt.Sprintf("%s; listeners are not imported, so smarthost's default listeners (submissions on :465, smtp on :25) apply", readError(err)))
		return
	}
	var bad []string
	im.services, bad = parseMasterCF(p, src)
	if im.services == nil {
		im.services = []service{}
	}
	for _, b := range bad {
		im.untranslated(&im.doc.head, b)
	}
}

// readError shortens a file error for a comment.
func readError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// translate fills the document. Later steps use what earlier ones found
// (restrictions before senders, relay domains before transport).
func (im *importer) translate() {
	im.header()
	for _, b := range im.main.bad {
		im.untranslated(&im.doc.head, b)
	}
	im.hostname()
	im.trustedNetworks()
	domains := im.relayDomains()
	im.restrictions()
	im.relayRecipients()
	im.listeners()
	im.tls()
	im.auth()
	im.senders()
	im.translateDKIM()
	im.transport(domains)
	im.delivery()
	im.limits()
	im.leftovers()
}

func (im *importer) header() {
	h := &im.doc.intro
	h.note("smarthost.toml imported from Postfix by `smarthost import postfix`",
		"from "+im.main.path+" and "+im.masterPath+dkimSource(im.dkim)+".")
	h.note("Every key not shown has the default given in config/schema.go. \"imported from\" says where a value came from; \"NOT TRANSLATED\" marks a setting smarthost cannot take over, to be reviewed. Then run `smarthost check`.")
}

func dkimSource(d *openDKIM) string {
	if d == nil || !d.found {
		return ""
	}
	return " and " + d.path
}

func (im *importer) hostname() {
	top := &im.doc.top
	if !im.main.isSet("myhostname") {
		top.note("hostname is not set: main.cf has no myhostname (Postfix then uses this machine's name). Set it to the name in this server's MX and PTR records, e.g. hostname = \"mail.example.org\".")
		return
	}
	v := im.main.get("myhostname")
	src := im.imported("myhostname")
	switch {
	case len(v.unknown) > 0:
		im.untranslated(top, unknownNote(im.main.source("myhostname"), v.unknown))
	case !config.ValidDomain(v.text) || !strings.Contains(v.text, "."):
		im.untranslated(top, fmt.Sprintf("%s: not a fully qualified host name; set hostname to the name in this server's MX and PTR records", im.main.source("myhostname")))
	default:
		top.set("hostname", quote(strings.ToLower(v.text)), src)
	}
}

// trustedNetworks translates mynetworks.
func (im *importer) trustedNetworks() {
	top := &im.doc.top
	im.handled["mynetworks_style"] = true
	if !im.main.isSet("mynetworks") {
		top.note(fmt.Sprintf("main.cf does not set mynetworks: Postfix trusts the networks of mynetworks_style = %s, which the importer cannot see from here; smarthost's default, 127.0.0.0/8 and ::1/128, applies.", im.main.get("mynetworks_style").text))
		return
	}
	src := im.imported("mynetworks")
	items, unknown := im.main.list("mynetworks")
	if len(unknown) > 0 {
		im.untranslated(top, unknownNote(im.main.source("mynetworks"), unknown))
		return
	}
	var nets, notes []string
	for _, item := range im.expandFiles(items, &notes) {
		n, err := parseNetwork(item)
		if err != nil {
			notes = append(notes, fmt.Sprintf("mynetworks: %s: %v", item, err))
			continue
		}
		nets = appendOnce(nets, n)
	}
	for _, n := range notes {
		im.untranslated(top, n)
	}
	if len(nets) == 0 && len(items) > 0 {
		top.note("No network of mynetworks could be translated; smarthost's default, 127.0.0.0/8 and ::1/128, applies.")
		return
	}
	top.set("trusted_networks", quoteList(nets), src)
}

// expandFiles replaces "/file/name" elements of a list by the file's
// elements; files that cannot be read are reported in notes.
func (im *importer) expandFiles(items []string, notes *[]string) []string {
	var out []string
	for _, item := range items {
		if !strings.HasPrefix(item, "/") {
			out = append(out, item)
			continue
		}
		more, err := im.r.readListFile(item)
		if err != nil {
			*notes = append(*notes, fmt.Sprintf("%s: %s", item, readError(err)))
			continue
		}
		out = append(out, more...)
	}
	return out
}

// parseNetwork translates one mynetworks element: "192.0.2.0/24",
// "[2001:db8::]/32", "[::1]", "192.0.2.1".
func parseNetwork(item string) (string, error) {
	switch {
	case strings.HasPrefix(item, "!"):
		return "", fmt.Errorf("smarthost has no excluded networks; list only the networks to trust")
	case isTableRefLike(item):
		return "", fmt.Errorf("smarthost takes the networks themselves, not a lookup table")
	}
	s := item
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", fmt.Errorf("missing ']'")
		}
		s = s[1:end] + s[end+1:]
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("not an IP address or network")
		}
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", fmt.Errorf("not an IP address or network")
	}
	if p.Masked() != p {
		return "", fmt.Errorf("host bits set; write the network, e.g. %s", p.Masked())
	}
	return p.String(), nil
}

// isTableRefLike reports whether a list element is a "type:name" table
// reference rather than an address (IPv6 in a Postfix list is bracketed).
func isTableRefLike(s string) bool {
	_, ok := parseTableRef(s)
	return ok && !strings.HasPrefix(s, "[")
}

// relayDomains translates relay_domains and returns the domains.
func (im *importer) relayDomains() []string {
	top := &im.doc.top
	if im.main.isSet("mydestination") {
		im.handled["mydestination"] = true
		d, _ := im.main.list("mydestination")
		const text = ": smarthost delivers no mail locally; mx listeners refuse these domains unless they are relay domains"
		switch {
		case len(d) == 0:
		case onlyOwnNames(d, im.main.get("myhostname").text):
			top.note(im.main.source("mydestination") + text + ".")
		default:
			im.untranslated(top, im.main.source("mydestination")+text)
		}
	}
	if !im.main.isSet("relay_domains") {
		// With compatibility_level below 2 the default is $mydestination,
		// whose domains Postfix delivers locally (see the note above), so
		// there is nothing to relay either way.
		return nil
	}
	src := im.imported("relay_domains")
	items, unknown := im.main.list("relay_domains")
	if len(unknown) > 0 {
		im.untranslated(top, unknownNote(im.main.source("relay_domains"), unknown))
		return nil
	}
	var domains, notes []string
	comments := []string{src}
	for _, item := range im.expandFiles(items, &notes) {
		if ref, ok := parseTableRef(item); ok {
			t, err := im.r.readTable(ref)
			if err != nil {
				notes = append(notes, fmt.Sprintf("relay_domains: %s: %v", ref, err))
				continue
			}
			comments = append(comments, fmt.Sprintf("with the keys of %s (%s)", t.source, ref))
			notes = append(notes, t.problems...)
			for _, e := range t.entries {
				domains = im.addDomain(domains, e.key, t.where(e), &notes)
			}
			continue
		}
		domains = im.addDomain(domains, item, "relay_domains", &notes)
	}
	for _, n := range notes {
		im.untranslated(top, n)
	}
	if len(domains) == 0 {
		return nil
	}
	if pdm, _ := im.main.list("parent_domain_matches_subdomains"); contains(pdm, "relay_domains") {
		comments = append(comments, "Postfix also relays for the subdomains of these (parent_domain_matches_subdomains has relay_domains); smarthost does so only for entries written \".example.com\".")
	}
	im.handled["parent_domain_matches_subdomains"] = true
	top.set("relay_domains", quoteList(domains), comments...)
	return domains
}

// onlyOwnNames reports whether local domains are only this machine's own
// names (its host name and localhost), which need no mail from outside.
func onlyOwnNames(domains []string, hostname string) bool {
	for _, d := range domains {
		d = strings.ToLower(d)
		if d != strings.ToLower(hostname) && d != "localhost" && !strings.HasPrefix(d, "localhost.") {
			return false
		}
	}
	return true
}

// addDomain adds a relay domain after checking it.
func (im *importer) addDomain(domains []string, d, where string, notes *[]string) []string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if !config.ValidDomain(strings.TrimPrefix(d, ".")) {
		*notes = append(*notes, fmt.Sprintf("%s: %q is not a domain", where, d))
		return domains
	}
	return appendOnce(domains, d)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// render writes the document in the order of systemd/smarthost.toml.
func (im *importer) render() string {
	var w strings.Builder
	d := &im.doc
	d.intro.write(&w)
	d.head.write(&w)
	d.top.write(&w)
	d.tls.write(&w)
	for i := range d.listeners {
		d.listeners[i].write(&w)
	}
	d.auth.write(&w)
	d.senders.write(&w)
	d.dkim.write(&w)
	for i := range d.dkimKeys {
		d.dkimKeys[i].write(&w)
	}
	d.transport.write(&w)
	d.delivery.write(&w)
	d.tlsPolicy.write(&w)
	d.limits.write(&w)
	d.inbound.write(&w)
	d.leftover.write(&w)
	return w.String()
}
