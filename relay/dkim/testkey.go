package dkim

import (
	"context"
	"crypto"
	"fmt"
	"slices"
	"strings"

	"smarthost/relay/resolve"
)

// Status is the outcome of [CheckKey] for one key.
type Status string

const (
	// StatusOK: the record publishes this key and nothing is wrong.
	StatusOK Status = "OK"
	// StatusTesting: the record matches but carries t=y, so receivers
	// treat signed mail as unsigned (RFC 6376 §3.6.1); remove the flag once
	// mail verifies.
	StatusTesting Status = "TESTING"
	// StatusMismatch: the record holds another key, or a key type, hash
	// or service this key cannot be used with.
	StatusMismatch Status = "MISMATCH"
	// StatusNotPublished: there is no TXT record at the key's name.
	StatusNotPublished Status = "NOT PUBLISHED"
	// StatusRevoked: the record has an empty p=.
	StatusRevoked Status = "REVOKED"
	// StatusInvalid: the record does not parse, or there are several.
	StatusInvalid Status = "INVALID"
	// StatusDNSError: the lookup failed (SERVFAIL, timeout); try again.
	StatusDNSError Status = "DNS ERROR"
)

// OK reports whether the status needs no action.
func (s Status) OK() bool { return s == StatusOK }

// Check is the result of [CheckKey].
type Check struct {
	// Name is the record's DNS name.
	Name string
	// Algorithm is the key's algorithm.
	Algorithm Algorithm
	Status    Status
	// Detail explains a status other than OK and says what to do.
	Detail string
}

// String formats the check as one line, as `smarthost dkim testkey`
// prints it.
func (c Check) String() string {
	s := fmt.Sprintf("%s (%s): %s", c.Name, c.Algorithm, c.Status)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// CheckKey looks up k's TXT record through r and compares it with the
// private key, as opendkim-testkey does.
func CheckKey(ctx context.Context, r resolve.Resolver, k *Key) Check {
	c := Check{Name: k.Name(), Algorithm: k.Algorithm()}
	publish := fmt.Sprintf("publish the record `smarthost dkim record -domain %s -selector %s -key %s` prints", k.Domain, k.Selector, k.File)
	txts, err := r.LookupTXT(ctx, c.Name)
	switch {
	case resolve.IsNotFound(err) || err == nil && len(txts) == 0:
		c.Status, c.Detail = StatusNotPublished, "no TXT record; "+publish
		return c
	case err != nil:
		c.Status, c.Detail = StatusDNSError, err.Error()
		return c
	case len(txts) > 1:
		// RFC 6376 §3.6.2.2: with several records the result is
		// undefined; go-msgauth, for one, fails them all.
		c.Status, c.Detail = StatusInvalid, fmt.Sprintf("%d TXT records; keep exactly one", len(txts))
		return c
	}
	rec, err := ParseRecord(txts[0])
	if err != nil {
		c.Status, c.Detail = StatusInvalid, fmt.Sprintf("%v; %s", err, publish)
		return c
	}
	c.Status, c.Detail = compare(rec, k)
	if c.Status == StatusMismatch || c.Status == StatusRevoked {
		c.Detail += "; " + publish
	}
	return c
}

// compare says whether rec publishes k and may be used to verify it.
func compare(rec Record, k *Key) (Status, string) {
	if rec.Revoked() {
		return StatusRevoked, "the record has an empty p= (revoked)"
	}
	if want := k.Algorithm().keyType(); rec.KeyType != want {
		return StatusMismatch, fmt.Sprintf("the record is for k=%s, the key is %s", rec.KeyType, want)
	}
	pub, err := rec.Key()
	if err != nil {
		return StatusMismatch, err.Error()
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(k.Public()) {
		return StatusMismatch, "the record holds a different public key"
	}
	if rec.Hashes != nil && !slices.Contains(rec.Hashes, "sha256") {
		return StatusMismatch, fmt.Sprintf("the record allows h=%s only, not sha256", strings.Join(rec.Hashes, ":"))
	}
	if rec.Services != nil && !slices.Contains(rec.Services, "email") && !slices.Contains(rec.Services, "*") {
		return StatusMismatch, fmt.Sprintf("the record's s=%s excludes email", strings.Join(rec.Services, ":"))
	}
	if rec.Testing() {
		return StatusTesting, "the record has t=y, so receivers treat signed mail as unsigned; remove t=y once mail verifies"
	}
	return StatusOK, ""
}
