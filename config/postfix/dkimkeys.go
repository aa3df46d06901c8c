package postfix

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"smarthost/config"
)

// dkimKey is one key to write as [[dkim.key]].
type dkimKey struct {
	name                   string   // in the KeyTable
	aliases                []string // names of the same key merged into this one
	domain, selector, file string
	source                 string   // provenance of the key
	patterns               []string // sign, in order
	signSource             []string // provenance of the patterns
}

// signEntry is one SigningTable line in the order OpenDKIM consults it.
type signEntry struct {
	pattern config.AddressPattern
	key     string // KeyTable name
	where   string
	rank    int // lookup order for plain tables; 0 for refile
}

// dkimKeys translates KeyTable and SigningTable, or the single-key
// Domain, Selector and KeyFile settings.
func (im *importer) dkimKeys(b *block) []*dkimKey {
	d := im.dkim
	kt, ok := d.get("KeyTable")
	if !ok {
		return im.singleKey(b)
	}
	for _, kw := range []string{"Domain", "KeyFile", "Selector", "SubDomains"} {
		if s, ok := d.get(kw); ok && (kw != "SubDomains" || d.yes(kw)) {
			b.note(d.source(s) + ": not used, KeyTable is set.")
		}
	}
	entries, err := im.readDataset(parseDataset(kt.value))
	if err != nil {
		im.untranslated(b, fmt.Sprintf("%s: %v", d.source(kt), err))
		return nil
	}
	byName := map[string]*dkimKey{}
	failed := map[string]bool{}
	var order []*dkimKey
	for _, e := range entries {
		k, err := keyTableEntry(e, d)
		if err != nil {
			im.untranslated(b, fmt.Sprintf("%s: %s: %v", e.where, e.key, err))
			failed[e.key] = true
			continue
		}
		byName[k.name] = k
		order = append(order, k)
	}
	st, ok := d.get("SigningTable")
	if !ok {
		b.note(d.source(kt) + ": there is no SigningTable, so each key signs for its own domain (smarthost's default sign pattern *@domain).")
		return dedupeKeys(im, b, order)
	}
	signing, err := im.signingTable(b, st)
	if err != nil {
		im.untranslated(b, fmt.Sprintf("%s: %v", d.source(st), err))
		return nil
	}
	var used []*dkimKey
	for _, s := range signing {
		k := byName[s.key]
		switch {
		case k == nil && failed[s.key]:
			im.untranslated(b, fmt.Sprintf("%s: %s %s: the key %s is not translated (above)", s.where, s.pattern, s.key, s.key))
			continue
		case k == nil:
			im.untranslated(b, fmt.Sprintf("%s: %s %s: the KeyTable has no key %q", s.where, s.pattern, s.key, s.key))
			continue
		}
		if len(k.patterns) == 0 {
			used = append(used, k)
		}
		k.patterns = appendOnce(k.patterns, s.pattern.String())
		k.signSource = appendOnce(k.signSource, "imported from "+s.where+": "+s.pattern.String()+" "+s.key)
	}
	for _, k := range order {
		if len(k.patterns) == 0 {
			b.note(k.source + ": no SigningTable line uses this key, so it is not imported.")
		}
	}
	keys := dedupeKeys(im, b, used)
	im.checkShadowing(b, signing, keys)
	return keys
}

// keyTableEntry parses a KeyTable line "name domain:selector:/path".
func keyTableEntry(e dkimEntry, d *openDKIM) (*dkimKey, error) {
	if len(e.values) != 1 {
		return nil, fmt.Errorf("not name domain:selector:keyfile")
	}
	parts := strings.SplitN(e.values[0], ":", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("not name domain:selector:keyfile")
	}
	k := &dkimKey{name: e.key, domain: strings.ToLower(strings.TrimSuffix(parts[0], ".")), selector: parts[1], file: parts[2],
		source: e.where + ": " + e.key + " " + e.values[0]}
	if base, ok := d.get("BaseDirectory"); ok && !strings.HasPrefix(k.file, "/") {
		k.file = path.Join(base.value, k.file)
	}
	switch {
	case k.domain == "%":
		return nil, fmt.Errorf("the domain %% (the From domain) has no smarthost equivalent; write one key per domain")
	case !config.ValidDomain(k.domain):
		return nil, fmt.Errorf("%q is not a domain", k.domain)
	case !validSelector(k.selector):
		return nil, fmt.Errorf("%q is not a DKIM selector", k.selector)
	case !strings.HasPrefix(k.file, "/"):
		return nil, fmt.Errorf("the private key is not a file path (a key written into the KeyTable itself?); save it to a file")
	case !writablePath(k.file):
		return nil, fmt.Errorf("the key file's name has control characters or is not UTF-8")
	}
	return k, nil
}

// validSelector is config's selector rule: dot-separated labels of
// letters, digits, '-' and '_'.
func validSelector(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// signingTable reads the SigningTable into the order OpenDKIM consults
// it: file order for refile: tables (wildcard patterns); for other tables
// OpenDKIM looks up user@host, host, user@.parent, .parent, user@* and *
// in that order, which sorting by rank reproduces.
func (im *importer) signingTable(b *block, st dkimSetting) ([]signEntry, error) {
	ds := parseDataset(st.value)
	entries, err := im.readDataset(ds)
	if err != nil {
		return nil, err
	}
	var out []signEntry
	for _, e := range entries {
		if len(e.values) == 0 {
			im.untranslated(b, e.where+": "+e.key+": no key name")
			continue
		}
		if len(e.values) > 1 {
			b.note(e.where + ": the signer identity " + e.values[1] + " (i=) is not translated; smarthost signs without i=.")
		}
		var s signEntry
		var perr error
		if ds.kind == "refile" {
			s.pattern, perr = refilePattern(e.key)
		} else {
			var rp rankedPattern
			rp, perr = plainPattern(e.key)
			s.pattern, s.rank = rp.pattern, rp.rank
		}
		if perr != nil {
			im.untranslated(b, fmt.Sprintf("%s: %s: %v", e.where, e.key, perr))
			continue
		}
		if e.values[0] == "%" {
			im.untranslated(b, e.where+": the key name % (named after the From domain) has no smarthost equivalent")
			continue
		}
		s.key, s.where = e.values[0], e.where
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].rank < out[j].rank })
	return out, nil
}

// refilePattern translates an OpenDKIM wildcard pattern ("*" matches any
// text) into an address pattern, where it has one.
func refilePattern(k string) (config.AddressPattern, error) {
	p, err := config.ParseAddressPattern(k)
	if err != nil || k != "*" && (!strings.Contains(k, "@") || strings.HasPrefix(k, "@")) {
		return config.AddressPattern{}, fmt.Errorf("smarthost's sign patterns are *, *@domain, *@*.domain and user@domain")
	}
	return p, nil
}

// rankedPattern is a sign pattern and its place in OpenDKIM's lookup
// order.
type rankedPattern struct {
	pattern config.AddressPattern
	rank    int
}

// plainPattern translates a key of a SigningTable that is not refile:,
// which OpenDKIM looks up literally, and gives its rank in the lookup
// order. Longer parents rank first: they are looked up first.
func plainPattern(k string) (rankedPattern, error) {
	var pat string
	var rank int
	local, domain, hasAt := strings.Cut(k, "@")
	switch {
	case k == "*":
		pat, rank = "*", 5<<16
	case hasAt && domain == "*":
		pat, rank = k, 4<<16
	case hasAt && strings.HasPrefix(domain, "."):
		pat, rank = local+"@*"+domain, 2<<16-len(domain)
	case hasAt:
		pat, rank = k, 0
	case strings.HasPrefix(k, "."):
		pat, rank = "*@*"+k, 3<<16-len(k)
	default:
		pat, rank = "*@"+k, 1<<16
	}
	if k != "*" && (strings.Contains(local, "*") || hasAt && domain != "*" && strings.Contains(domain, "*")) {
		return rankedPattern{}, fmt.Errorf("OpenDKIM looks this key up literally, so it never matched an address; wildcards need a refile: SigningTable")
	}
	p, err := config.ParseAddressPattern(pat)
	if err != nil {
		return rankedPattern{}, err
	}
	return rankedPattern{pattern: p, rank: rank}, nil
}

// checkShadowing reports addresses that OpenDKIM and smarthost would sign
// with keys of different domains. OpenDKIM uses the first SigningTable
// line that matches; smarthost uses the first key, in the order written,
// with a matching pattern. Grouping lines by key reorders them, which
// matters where an earlier line's pattern overlaps a later line's that
// now comes first.
func (im *importer) checkShadowing(b *block, signing []signEntry, keys []*dkimKey) {
	pos := map[string]int{}
	domain := map[string]string{}
	for i, k := range keys {
		for _, n := range append([]string{k.name}, k.aliases...) {
			pos[n] = i
			domain[n] = k.domain
		}
	}
	for i, early := range signing {
		for _, late := range signing[i+1:] {
			_, ok1 := pos[early.key]
			_, ok2 := pos[late.key]
			if !ok1 || !ok2 || pos[late.key] >= pos[early.key] || domain[late.key] == domain[early.key] {
				continue
			}
			if overlap(early.pattern, late.pattern) {
				im.untranslated(b, fmt.Sprintf("%s (%s) comes before %s (%s) in the SigningTable, but %s's key comes first here, so some addresses matching both are signed for %s instead of %s; reorder the [[dkim.key]] tables or narrow the patterns",
					early.where, early.pattern, late.where, late.pattern, late.key, domain[late.key], domain[early.key]))
			}
		}
	}
}

// overlap reports whether some address matches both patterns.
func overlap(a, b config.AddressPattern) bool {
	if a.Local != "*" && b.Local != "*" && a.Local != b.Local {
		return false
	}
	return domainsOverlap(a.Domain, b.Domain)
}

func domainsOverlap(a, b string) bool {
	switch {
	case a == "*" || b == "*":
		return true
	case strings.HasPrefix(a, "*.") && strings.HasPrefix(b, "*."):
		return strings.HasSuffix(a[1:], b[1:]) || strings.HasSuffix(b[1:], a[1:])
	case strings.HasPrefix(a, "*."):
		return strings.HasSuffix(b, a[1:])
	case strings.HasPrefix(b, "*."):
		return strings.HasSuffix(a, b[1:])
	}
	return a == b
}

// dedupeKeys keeps one key per domain and selector, which smarthost
// requires; the patterns of a repeat are merged into the first.
func dedupeKeys(im *importer, b *block, keys []*dkimKey) []*dkimKey {
	var out []*dkimKey
	first := map[string]*dkimKey{}
	for _, k := range keys {
		id := k.selector + "._domainkey." + k.domain
		f, ok := first[id]
		if !ok {
			first[id] = k
			out = append(out, k)
			continue
		}
		if f.file != k.file {
			im.untranslated(b, fmt.Sprintf("%s: %s is also %s with another key file; smarthost has one key per selector, the first", k.source, id, f.name))
		}
		f.aliases = append(f.aliases, k.name)
		for _, p := range k.patterns {
			f.patterns = appendOnce(f.patterns, p)
		}
		f.signSource = append(f.signSource, k.signSource...)
	}
	return out
}

// singleKey translates the single-key form: Domain (a data set of
// domains), Selector and KeyFile, with SubDomains.
func (im *importer) singleKey(b *block) []*dkimKey {
	d := im.dkim
	dom, okD := d.get("Domain")
	sel, okS := d.get("Selector")
	file, okF := d.get("KeyFile")
	if !okD || !okS || !okF {
		b.note(d.path + " names no keys (KeyTable, or Domain, Selector and KeyFile); add [[dkim.key]] tables to sign outbound mail.")
		return nil
	}
	domains, err := im.readDataset(parseDataset(dom.value))
	if err != nil {
		im.untranslated(b, fmt.Sprintf("%s: %v", d.source(dom), err))
		return nil
	}
	sub, _ := d.get("SubDomains")
	var keys []*dkimKey
	for _, e := range domains {
		k, err := keyTableEntry(dkimEntry{key: "Domain", values: []string{e.key + ":" + sel.value + ":" + file.value}, where: e.where}, d)
		if err != nil {
			im.untranslated(b, fmt.Sprintf("%s: %s: %v", d.source(dom), e.key, err))
			continue
		}
		k.source = fmt.Sprintf("%s; %s; %s", d.source(dom), d.source(sel), d.source(file))
		k.patterns = []string{"*@" + k.domain}
		if d.yes("SubDomains") {
			k.patterns = append(k.patterns, "*@*."+k.domain)
			k.signSource = []string{"imported from " + d.source(sub)}
		}
		keys = append(keys, k)
	}
	return dedupeKeys(im, b, keys)
}
