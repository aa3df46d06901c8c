package dkim

import (
	"fmt"
	"io"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// Verification is the outcome of checking one DKIM-Signature field.
type Verification struct {
	Domain string // d=
	Err    error  // nil when the signature verified
}

// Verify checks every DKIM signature of msg, looking public keys up with
// lookupTXT (the TXT records of a name, e.g. from a resolve.Resolver). It
// is go-msgauth's verifier; inbound checks and the demo use it so that
// what we sign is checked by a second implementation.
func Verify(msg io.Reader, lookupTXT func(name string) ([]string, error)) ([]Verification, error) {
	vs, err := msgauth.VerifyWithOptions(msg, &msgauth.VerifyOptions{LookupTXT: lookupTXT})
	if err != nil {
		return nil, fmt.Errorf("dkim: verify: %w", err)
	}
	out := make([]Verification, len(vs))
	for i, v := range vs {
		out[i] = Verification{Domain: v.Domain, Err: v.Err}
	}
	return out, nil
}
