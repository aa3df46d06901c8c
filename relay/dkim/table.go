package dkim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"smarthost/config"
)

// Table is the set of signing keys from the configuration's [dkim] section.
// Build it with [Load]. It is safe for concurrent use; Now, if set, must be
// set before the Table is shared.
type Table struct {
	// Now gives the signing time, the t= tag. nil means time.Now; tests
	// set a fixed clock.
	Now func() time.Time

	keys        []*Key
	headerCanon Canonicalization
	bodyCanon   Canonicalization
	signed      []string // the names in signedHeaderNames, lower-cased
}

// Load reads every key of cfg and returns the table. It reports every bad
// key, not just the first, each naming its file, domain and selector and
// saying how to fix it. An empty canonicalization means
// [config.DefaultCanonicalization]; a key without sign patterns signs for
// "*@<domain>" (config applies both defaults already; Load repeats them so
// a zero config.DKIM is usable).
func Load(cfg config.DKIM) (*Table, error) {
	canon := cfg.Canonicalization
	if canon == "" {
		canon = config.DefaultCanonicalization
	}
	t := &Table{signed: strings.Fields(strings.ToLower(signedHeaderNames))}
	var errs []error
	var err error
	if t.headerCanon, t.bodyCanon, err = parseCanonicalization(canon); err != nil {
		errs = append(errs, err)
	}
	for _, ck := range cfg.Keys {
		signer, err := readPrivateKey(ck.PrivateKey)
		if err == nil {
			signer, err = fastSigner(signer)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dkim: key %s: %w", RecordName(ck.Domain, ck.Selector), err))
			continue
		}
		k := &Key{Domain: strings.ToLower(strings.TrimSuffix(ck.Domain, ".")), Selector: ck.Selector, File: ck.PrivateKey, Sign: ck.Sign, signer: signer}
		if len(k.Sign) == 0 {
			k.Sign = []config.AddressPattern{{Local: "*", Domain: k.Domain}}
		}
		t.keys = append(t.keys, k)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// Keys returns the keys in configuration order.
func (t *Table) Keys() []*Key { return append([]*Key(nil), t.keys...) }

// choose returns the keys that sign mail from addr, or none.
//
// The first key, in configuration order, with a sign pattern matching addr
// decides the signing domain, as the first matching line of OpenDKIM's
// SigningTable (with refile:) does. OpenDKIM stops there; we go on and add
// every later key of that same domain whose patterns also match, so a
// domain can sign with RSA and Ed25519 side by side (RFC 8463 §6 advises
// both while verifiers catch up). Matching keys of other domains are
// skipped: one message, one signing domain, the one DMARC aligns with.
func (t *Table) choose(addr string) []*Key {
	var chosen []*Key
	for _, k := range t.keys {
		if (len(chosen) == 0 || k.Domain == chosen[0].Domain) && k.matches(addr) {
			chosen = append(chosen, k)
		}
	}
	return chosen
}

func (t *Table) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}
