package dnscheck

import (
	"crypto/rsa"
	"fmt"
	"strings"

	"smarthost/relay/dkim"
)

// maxRSABits is the largest RSA key every verifier must handle: RFC 8301
// §3.2 requires verifiers to accept 1024 to 4096 bits.
const maxRSABits = 4096

// checkDKIM checks, for each key that signs mail from the domain, that
// its published record matches the private key (dkim.CheckKey, the check
// `smarthost dkim testkey` runs), and reports its size.
func (r *run) checkDKIM() {
	if len(r.keys) == 0 {
		r.add(Finding{Check: CheckDKIM, Level: LevelWarn, ID: "dkim-no-key",
			Text: fmt.Sprintf("no configured key signs mail from %s, so smarthost sends it unsigned and DMARC can pass on SPF alone", r.domain),
			Fix:  fmt.Sprintf("run `smarthost dkim keygen -domain %s -selector SELECTOR`, add a [[dkim.key]] for it and publish the record", r.domain)})
		return
	}
	rsaKeys := 0
	for _, k := range r.keys {
		c := dkim.CheckKey(r.ctx, r.res, k)
		size := keySize(k)
		if k.Algorithm() == dkim.RSASHA256 {
			rsaKeys++
		}
		// CheckKey's Detail is "what is wrong; what to do".
		text, fix, _ := strings.Cut(c.Detail, "; ")
		f := Finding{Check: CheckDKIM, Text: fmt.Sprintf("%s (%s, %s): %s", c.Name, k.Algorithm(), size, text), Fix: fix}
		switch c.Status {
		case dkim.StatusOK:
			f.Level, f.ID = LevelOK, "dkim-ok"
			f.Text = fmt.Sprintf("%s (%s, %s) publishes the key in %s", c.Name, k.Algorithm(), size, k.File)
		case dkim.StatusTesting:
			f.Level, f.ID = LevelWarn, "dkim-testing"
		case dkim.StatusDNSError:
			f = lookupFailed(CheckDKIM, "TXT "+c.Name, dnsErrorText(c.Detail))
		case dkim.StatusNotPublished:
			f.Level, f.ID = LevelError, "dkim-not-published"
		case dkim.StatusMismatch, dkim.StatusRevoked:
			f.Level, f.ID = LevelError, "dkim-mismatch"
		default:
			f.Level, f.ID = LevelError, "dkim-invalid"
		}
		if f.Level == LevelError && f.ID != "dns-temporary" && f.Fix == "" {
			f.Fix = fmt.Sprintf("publish the record `smarthost dkim record -domain %s -selector %s -key %s` prints", k.Domain, k.Selector, k.File)
		}
		r.add(f)
		if pub, ok := k.Public().(*rsa.PublicKey); ok && pub.N.BitLen() > maxRSABits {
			r.add(Finding{Check: CheckDKIM, Level: LevelWarn, ID: "dkim-key-large",
				Text: fmt.Sprintf("%s is a %d-bit RSA key; RFC 8301 §3.2 obliges verifiers to handle only up to %d bits", c.Name, pub.N.BitLen(), maxRSABits),
				Fix:  "make a 2048-bit key with `smarthost dkim keygen` under a new selector"})
		}
	}
	if rsaKeys == 0 {
		// RFC 8463 §6 advises signing with RSA as well while verifiers
		// without Ed25519 support remain.
		r.add(Finding{Check: CheckDKIM, Level: LevelWarn, ID: "dkim-no-rsa",
			Text: fmt.Sprintf("only Ed25519 keys sign for %s: verifiers without RFC 8463 support see mail as unsigned", r.domain),
			Fix:  fmt.Sprintf("add an RSA key beside it: `smarthost dkim keygen -domain %s -selector SELECTOR -algo rsa-2048`", r.keys[0].Domain)})
	}
}

// keySize describes a key's size: "2048-bit" for RSA, "256-bit" for
// Ed25519 (its security is roughly that of 3072-bit RSA).
func keySize(k *dkim.Key) string {
	if pub, ok := k.Public().(*rsa.PublicKey); ok {
		return fmt.Sprintf("%d-bit", pub.N.BitLen())
	}
	return "256-bit"
}

// dnsErrorText carries CheckKey's text for a failed lookup to
// lookupFailed. The text is the resolver's error, "lookup NAME on
// SERVER: REASON"; only the reason is kept, as dnsReason keeps it.
type dnsErrorText string

func (e dnsErrorText) Error() string {
	s := string(e)
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
