package dnscheck

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"

	"smarthost/relay/resolve"
)

// RFC 7208 §4.6.4's limits on the DNS work one check_host() may cause.
const (
	// maxLookups bounds the terms that query DNS: include, a, mx, ptr,
	// exists and redirect, counted through every included record.
	maxLookups = 10
	// maxVoidLookups bounds the queries answered with no record at all.
	maxVoidLookups = 2
	// maxMXNames bounds the MX names one mx mechanism may look up.
	maxMXNames = 10
)

// checkSPF checks the domain's SPF record (RFC 7208): one record, its
// syntax, the lookup limits counted through includes and redirects, how
// it ends (all), and whether it authorises this server's addresses.
func (r *run) checkSPF() {
	txts, err := r.res.LookupTXT(r.ctx, r.domain)
	if err != nil && !resolve.IsNotFound(err) {
		r.add(lookupFailed(CheckSPF, "TXT "+r.domain, err))
		return
	}
	recs := spfRecords(txts)
	switch len(recs) {
	case 0:
		r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-missing",
			Text: fmt.Sprintf("no SPF record at %s: receivers cannot tell which hosts may send its mail, and many junk or refuse it", r.domain),
			Fix:  fmt.Sprintf("publish `%s. IN TXT \"%s\"`", r.domain, r.suggestSPF())})
		return
	case 1:
	default:
		// RFC 7208 §4.5: more than one record is permerror.
		r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-multiple",
			Text: fmt.Sprintf("%d SPF records at %s: receivers return permerror for all its mail (RFC 7208 §4.5)", len(recs), r.domain),
			Fix:  "merge them into one v=spf1 record"})
		return
	}
	rec := parseSPF(recs[0])
	r.add(Finding{Check: CheckSPF, Level: LevelOK, ID: "spf-record", Text: fmt.Sprintf("record: %q", rec.text)})
	for _, p := range rec.problems {
		r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-syntax",
			Text: "syntax error, so receivers return permerror for all mail: " + p,
			Fix:  "correct the term (RFC 7208 §5 mechanisms, §6 modifiers)"})
	}
	r.checkSPFTerms(rec)
	w := &spfWalk{r: r, fetched: map[string]fetched{}}
	w.walk(r.domain, rec)
	w.report()
	r.checkSPFAll(rec, w.fetched)
	r.checkSPFAuthorises()
}

// spfRecords returns the SPF records among a name's TXT records.
func spfRecords(txts []string) []string {
	var recs []string
	for _, t := range txts {
		if isSPF1(t) {
			recs = append(recs, t)
		}
	}
	return recs
}

// suggestSPF is a record to start from: this server by name, or the MX.
func (r *run) suggestSPF() string {
	if r.host.name != "" {
		return "v=spf1 a:" + r.host.name + " -all"
	}
	return "v=spf1 mx -all"
}

// checkSPFTerms reports terms that parse but do not do what they seem to.
func (r *run) checkSPFTerms(rec spfRecord) {
	afterAll := false
	for _, t := range rec.terms {
		switch {
		case afterAll && !t.modifier:
			// RFC 7208 §5.1: mechanisms after all are never tested.
			r.add(Finding{Check: CheckSPF, Level: LevelWarn, ID: "spf-after-all",
				Text: fmt.Sprintf("%q comes after all and is never evaluated (RFC 7208 §5.1)", t.text),
				Fix:  "move it before the all mechanism"})
		case t.mechanism("ptr"):
			r.add(Finding{Check: CheckSPF, Level: LevelWarn, ID: "spf-ptr",
				Text: fmt.Sprintf("%q: the ptr mechanism is slow and unreliable, and RFC 7208 §5.5 says not to use it", t.text),
				Fix:  "list the addresses with ip4:/ip6: (or a:) instead"})
		case t.modifier && t.name == "redirect" && rec.hasAll():
			// RFC 7208 §6.1: redirect is ignored when there is an all.
			r.add(Finding{Check: CheckSPF, Level: LevelWarn, ID: "spf-redirect-ignored",
				Text: fmt.Sprintf("%q is ignored because the record has an all mechanism (RFC 7208 §6.1)", t.text),
				Fix:  "remove either the redirect or the all"})
		}
		if t.mechanism("all") {
			afterAll = true
		}
	}
}

// hasAll reports whether the record has an all mechanism.
func (r spfRecord) hasAll() bool {
	_, ok := r.all()
	return ok
}

// checkSPFAll reports how the record ends: what hosts it does not list
// get. With no all, a redirect's target record decides (RFC 7208 §6.1).
func (r *run) checkSPFAll(rec spfRecord, targets map[string]fetched) {
	all, ok := rec.all()
	for hops := 0; !ok && hops < maxLookups; hops++ {
		target, found := normalize(rec.modifier("redirect"))
		if rec.modifier("redirect") == "" || !found {
			break
		}
		f := targets[target]
		if f.rec == nil {
			return // the redirect could not be followed; reported already
		}
		rec = *f.rec
		all, ok = rec.all()
	}
	fix := "end the record with -all (or ~all while you are still finding all your senders)"
	switch {
	case !ok:
		r.add(Finding{Check: CheckSPF, Level: LevelWarn, ID: "spf-no-all",
			Text: "no all mechanism: hosts not listed get neutral, as if there were no SPF (RFC 7208 §4.7)", Fix: fix})
	case all.qualifier == '+':
		r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-plus-all",
			Text: fmt.Sprintf("%q lets every host on the Internet pass SPF for %s", all.text, r.domain), Fix: fix})
	case all.qualifier == '?':
		r.add(Finding{Check: CheckSPF, Level: LevelWarn, ID: "spf-neutral-all",
			Text: fmt.Sprintf("%q: hosts not listed get neutral, as if there were no SPF", all.text), Fix: fix})
	case all.qualifier == '~':
		r.add(Finding{Check: CheckSPF, Level: LevelOK, ID: "spf-all",
			Text: "ends in ~all: hosts not listed soft-fail; -all is stricter once every sender is listed"})
	default:
		r.add(Finding{Check: CheckSPF, Level: LevelOK, ID: "spf-all",
			Text: "ends in -all: hosts not listed fail"})
	}
}

// checkSPFAuthorises evaluates the record, with the SPF library that
// checks inbound mail, for each address of this server, as a receiver
// does for mail with an envelope sender at the domain.
func (r *run) checkSPFAuthorises() {
	if !r.host.known() {
		r.add(Finding{Check: CheckSPF, Level: LevelInfo, ID: "spf-host-unknown",
			Text: "not checked whether the record authorises this server: its hostname has no known address (see PTR)"})
		return
	}
	for _, a := range r.host.addrs {
		res, err := spf.CheckHostWithSender(net.IP(a.Unmap().AsSlice()), r.host.name, "postmaster@"+r.domain,
			spf.WithContext(r.ctx), spf.WithResolver(resolve.NetStyle{Resolver: r.res}))
		mech := "ip4:"
		if a.Unmap().Is6() {
			mech = "ip6:"
		}
		switch res {
		case spf.Pass:
			r.add(Finding{Check: CheckSPF, Level: LevelOK, ID: "spf-authorised",
				Text: fmt.Sprintf("authorises %s (%s)", a, r.host.name)})
		case spf.TempError:
			r.add(lookupFailed(CheckSPF, "the SPF record for "+a.String(), err))
		case spf.PermError:
			r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-permerror",
				Text: fmt.Sprintf("evaluating it for %s gives permerror (%v): receivers treat mail from this server as failing SPF checks", a, err),
				Fix:  "fix the errors reported above"})
		default:
			r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-not-authorised",
				Text: fmt.Sprintf("does not authorise %s (%s): the result for mail from this server is %s", a, r.host.name, res),
				Fix:  fmt.Sprintf("add %s%s (or a:%s) before the all", mech, a, r.host.name)})
		}
	}
}

// spfWalk counts the DNS lookups of a record and of everything it
// includes, as RFC 7208 §4.6.4 counts them for the worst case: an address
// that matches no term makes a receiver evaluate every one.
type spfWalk struct {
	r          *run
	lookups    int
	voids      []string // the terms whose lookup found nothing
	unfollowed []string // terms with macros: counted, not followed
	// fetched are the records of include and redirect targets, by
	// domain.
	fetched map[string]fetched
	chain   []string // the domains being walked, outermost first
}

// term names a term for the report: as written in the domain's own
// record, with the record's domain when it comes from an included one.
func (w *spfWalk) term(t string) string {
	if d := w.chain[len(w.chain)-1]; d != w.r.domain {
		return t + " (in " + d + ")"
	}
	return t
}

// walk counts domain's record rec and follows its include and redirect
// terms.
func (w *spfWalk) walk(domain string, rec spfRecord) {
	w.chain = append(w.chain, domain)
	defer func() { w.chain = w.chain[:len(w.chain)-1] }()
	for _, t := range rec.terms {
		switch {
		case t.modifier && t.name == "redirect" && !rec.hasAll():
			w.lookups++
			w.follow(t.arg, t.text)
		case t.modifier:
		case t.name == "include":
			w.lookups++
			w.follow(t.arg, t.text)
		case t.name == "a", t.name == "exists":
			w.lookups++
			w.probe(t, domain)
		case t.name == "mx":
			w.lookups++
			w.probeMX(t, domain)
		case t.name == "ptr":
			w.lookups++ // its lookups depend on the client's address
		}
	}
}

// follow walks the record an include or redirect names. A domain
// reached twice is counted twice, as receivers count it, but looked up
// and reported once.
func (w *spfWalk) follow(target, term string) {
	if hasMacro(target) {
		w.unfollowed = append(w.unfollowed, w.term(term))
		return
	}
	name, ok := normalize(target)
	switch {
	case !ok:
		return // a syntax error, reported with the record that has it
	case slices.Contains(w.chain, name):
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-loop",
			Text: fmt.Sprintf("%q loops: %s → %s; receivers return permerror", term, strings.Join(w.chain, " → "), name),
			Fix:  "remove the include or redirect that leads back"})
		return
	case w.lookups > 3*maxLookups:
		return // far over the limit already; the count says so
	}
	f, seen := w.fetched[name]
	if !seen {
		f = w.fetch(name, term)
		w.fetched[name] = f
	}
	if f.void {
		w.voids = append(w.voids, w.term(term))
	}
	if f.rec != nil {
		w.walk(name, *f.rec)
	}
}

// fetched is the outcome of looking up the SPF record of an include or
// redirect target.
type fetched struct {
	rec  *spfRecord // nil when there is no usable record
	void bool       // the lookup found no record at all
}

// fetch looks up and parses name's record, reporting what is wrong.
func (w *spfWalk) fetch(name, term string) fetched {
	txts, err := w.r.res.LookupTXT(w.r.ctx, name)
	if err != nil && !resolve.IsNotFound(err) {
		w.r.add(lookupFailed(CheckSPF, "TXT "+name+" (for "+term+")", err))
		return fetched{}
	}
	recs := spfRecords(txts)
	switch len(recs) {
	case 0:
		// RFC 7208 §5.2 (include) and §6.1 (redirect): permerror.
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-target-missing",
			Text: fmt.Sprintf("%q: %s has no SPF record, so receivers return permerror (RFC 7208 §5.2, §6.1)", w.term(term), name),
			Fix:  "remove the term, or correct the domain it names"})
		return fetched{void: resolve.IsNotFound(err)}
	case 1:
	default:
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-target-multiple",
			Text: fmt.Sprintf("%q: %s has %d SPF records, so receivers return permerror (RFC 7208 §4.5)", w.term(term), name, len(recs)),
			Fix:  "ask the operator of " + name + " to merge them, or remove the term"})
		return fetched{}
	}
	rec := parseSPF(recs[0])
	for _, p := range rec.problems {
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-target-syntax",
			Text: fmt.Sprintf("the record of %s, reached by %q, has a syntax error, so receivers return permerror: %s", name, w.term(term), p),
			Fix:  "ask the operator of " + name + " to fix it, or remove the term"})
	}
	return fetched{rec: &rec}
}

// probe looks up the name of an a or exists term, to count void lookups.
func (w *spfWalk) probe(t spfTerm, domain string) {
	target := t.arg
	if target == "" {
		target = domain
	}
	if hasMacro(target) {
		w.unfollowed = append(w.unfollowed, w.term(t.text))
		return
	}
	name, ok := normalize(target)
	if !ok {
		return
	}
	network := "ip"
	if t.name == "exists" {
		network = "ip4" // RFC 7208 §5.7: exists asks for an A record
	}
	_, err := w.r.res.LookupNetIP(w.r.ctx, network, name)
	switch {
	case resolve.IsNotFound(err):
		w.voids = append(w.voids, w.term(t.text))
	case err != nil:
		w.r.add(lookupFailed(CheckSPF, "A/AAAA "+name+" (for "+t.text+")", err))
	}
}

// probeMX looks up the MX of an mx term, to count void lookups and the
// names the term makes a receiver look up.
func (w *spfWalk) probeMX(t spfTerm, domain string) {
	target := t.arg
	if target == "" {
		target = domain
	}
	if hasMacro(target) {
		w.unfollowed = append(w.unfollowed, w.term(t.text))
		return
	}
	name, ok := normalize(target)
	if !ok {
		return
	}
	mxs, err := w.r.res.LookupMX(w.r.ctx, name)
	switch {
	case resolve.IsNotFound(err):
		w.voids = append(w.voids, w.term(t.text))
	case err != nil:
		w.r.add(lookupFailed(CheckSPF, "MX "+name+" (for "+t.text+")", err))
	case len(mxs) > maxMXNames:
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-mx-too-many",
			Text: fmt.Sprintf("%q: %s has %d MX records, more than the %d RFC 7208 §4.6.4 allows, so receivers return permerror", t.text, name, len(mxs), maxMXNames),
			Fix:  "list the hosts with ip4:/ip6: instead of mx"})
	}
}

// report adds the findings on the counts.
func (w *spfWalk) report() {
	var notes string
	if len(w.unfollowed) > 0 {
		notes = fmt.Sprintf("; counted but not followed, as they depend on the message: %s", strings.Join(w.unfollowed, " "))
	}
	if w.lookups > maxLookups {
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-too-many-lookups",
			Text: fmt.Sprintf("%d DNS lookups, more than the %d RFC 7208 §4.6.4 allows: receivers return permerror for mail from any host not matched before the limit%s", w.lookups, maxLookups, notes),
			Fix:  "replace include:, a and mx terms with ip4:/ip6: ranges, and drop includes no longer used"})
	}
	if len(w.voids) > maxVoidLookups {
		w.r.add(Finding{Check: CheckSPF, Level: LevelError, ID: "spf-too-many-void",
			Text: fmt.Sprintf("%d lookups find no record (%s), more than the %d void lookups RFC 7208 §4.6.4 allows: receivers return permerror", len(w.voids), strings.Join(w.voids, " "), maxVoidLookups),
			Fix:  "remove the terms that name domains or hosts that no longer exist"})
	}
	if w.lookups <= maxLookups && len(w.voids) <= maxVoidLookups {
		w.r.add(Finding{Check: CheckSPF, Level: LevelOK, ID: "spf-lookups",
			Text: fmt.Sprintf("%d of %d DNS lookups, %d of %d void lookups%s", w.lookups, maxLookups, len(w.voids), maxVoidLookups, notes)})
	}
}
