package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/authres"
	msgauth "github.com/emersion/go-msgauth/dkim"

	"smarthost/relay/dkim"
	"smarthost/relay/resolve"
)

// maxSignatures is how many DKIM-Signature fields are verified, top-most
// first (the order go-msgauth verifies them in). Each costs a DNS lookup,
// a goroutine and a pass of the body through a hash, so a message with
// hundreds of signatures must not get hundreds. OpenDKIM bounds this the
// same way (MaximumSignaturesToVerify). Signatures beyond it are reported
// as dkim=policy: RFC 8601 §2.7.1, "some aspect of the signature … was
// not acceptable to the ADMD".
const maxSignatures = 5

// headerBMin is the length of the header.b prefix that identifies a
// signature in Authentication-Results: RFC 6008 §4 asks for at least 8
// characters, more only where two signatures would share the prefix.
const headerBMin = 8

// signature is what Authentication-Results reports of one DKIM-Signature
// field, read from its tags (RFC 6376 §3.5).
type signature struct {
	domain     string // d=, lower-cased
	identifier string // i=, "" when absent
	selector   string // s=
	algorithm  string // a=
	b          string // b=, white space removed
	expires    int64  // x=, seconds since the epoch; 0 when absent
}

// parseSignature reads the tags of a DKIM-Signature value. It is lenient:
// go-msgauth judges the signature; this only collects what is reported.
func parseSignature(v []byte) signature {
	var s signature
	for _, tag := range strings.Split(unfold(v), ";") {
		name, val, ok := strings.Cut(tag, "=")
		if !ok {
			continue
		}
		val = strings.Join(strings.Fields(val), "")
		switch strings.TrimSpace(name) {
		case "d":
			s.domain = strings.ToLower(val)
		case "i":
			s.identifier = val
		case "s":
			s.selector = val
		case "a":
			s.algorithm = val
		case "b":
			s.b = val
		case "x":
			s.expires, _ = strconv.ParseInt(val, 10, 64)
		}
	}
	return s
}

// dkimOutcome is the result of one signature.
type dkimOutcome struct {
	sig    signature
	result authres.ResultValue
	reason string // for Authentication-Results: never names a DNS server
}

// errVerifierDone closes the pipe when go-msgauth has stopped reading
// (it may return before the end of the body, e.g. on a missing key), so
// that Write does not block on a reader that is gone.
var errVerifierDone = errors.New("inbound: dkim verifier done")

// errAborted is what a verifier still reading sees after [Check.Abort].
var errAborted = errors.New("inbound: check aborted")

// verifier runs go-msgauth's DKIM verifier over the message as it
// streams: the header section is written when the session has read it,
// the body through Write, and the verifier reads both from an io.Pipe in
// its own goroutine. The pipe has no buffer, so nothing of the message is
// kept here; the session's writes wait while the verifier fetches a key
// (bounded by the resolver's timeout) and then go at hashing speed.
type verifier struct {
	sigs    []signature
	pw      *io.PipeWriter
	done    chan struct{} // closed when the goroutine has returned
	stopped bool          // the verifier reads no more; Write discards

	// Set by the goroutine before done is closed.
	vs  []*msgauth.Verification
	err error

	mu   sync.Mutex
	keys map[string][]string // key records fetched, by lower-case name
}

// startVerifier starts verifying the signatures in fields, reading keys
// through r with ctx. It returns nil when there is no signature.
func startVerifier(ctx context.Context, r resolve.Resolver, fields []field, header []byte, hasBody bool) *verifier {
	var sigs []signature
	for _, f := range fields {
		if f.is("DKIM-Signature") {
			sigs = append(sigs, parseSignature(f.value()))
		}
	}
	if len(sigs) == 0 {
		return nil
	}
	pr, pw := io.Pipe()
	v := &verifier{sigs: sigs, pw: pw, done: make(chan struct{}), keys: map[string][]string{}}
	lookup := lookupTXT(ctx, r)
	opts := &msgauth.VerifyOptions{
		MaxVerifications: maxSignatures,
		LookupTXT: func(name string) ([]string, error) {
			txt, err := lookup(name)
			v.mu.Lock()
			v.keys[strings.ToLower(name)] = txt
			v.mu.Unlock()
			return txt, err
		},
	}
	go func() {
		defer close(v.done)
		v.vs, v.err = msgauth.VerifyWithOptions(pr, opts)
		pr.CloseWithError(errVerifierDone)
	}()
	v.write(header)
	if !hasBody {
		// go-msgauth needs the empty line that ends the header section.
		v.write([]byte("\r\n"))
	}
	return v
}

// write feeds p to the verifier. Once it has stopped reading, the rest of
// the message is not needed and is dropped here.
func (v *verifier) write(p []byte) error {
	if v.stopped {
		return nil
	}
	_, err := v.pw.Write(p)
	switch {
	case errors.Is(err, errVerifierDone):
		v.stopped = true
		return nil
	case err != nil:
		return fmt.Errorf("inbound: dkim: %w", err)
	}
	return nil
}

// wait ends the message and waits for the verifier, or for ctx.
func (v *verifier) wait(ctx context.Context) error {
	v.pw.Close()
	select {
	case <-v.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inbound: dkim: %w", ctx.Err())
	}
}

// abort stops the verifier and waits for its goroutine: every read it
// makes from now on fails.
func (v *verifier) abort() {
	v.pw.CloseWithError(errAborted)
	<-v.done
}

// outcomes returns one result per signature, in header order. It must be
// called after wait returned nil. now is the clock for x= (RFC 6376 §3.5).
func (v *verifier) outcomes(now time.Time) []dkimOutcome {
	out := make([]dkimOutcome, len(v.sigs))
	failed := v.err != nil && !errors.Is(v.err, msgauth.ErrTooManySignatures)
	for i, sig := range v.sigs {
		o := &out[i]
		o.sig = sig
		switch {
		case i >= maxSignatures:
			o.result, o.reason = authres.ResultPolicy, "too many signatures"
		case failed || i >= len(v.vs):
			// go-msgauth stopped on an error that is not about a
			// signature (a read error): nothing was decided.
			o.result, o.reason = authres.ResultTempError, "verification failed"
		default:
			o.result, o.reason = classify(v.vs[i].Err)
		}
		if o.result == authres.ResultPass && sig.expires != 0 && now.Unix() > sig.expires {
			// go-msgauth checks x= against its own clock; checking it
			// again against ours keeps the result testable.
			o.result, o.reason = authres.ResultPermError, "signature has expired"
		}
		if o.result == authres.ResultFail && v.testing(sig) {
			// RFC 6376 §3.6.1, t=y: verifiers MUST NOT treat mail of
			// a domain testing DKIM differently from unsigned mail,
			// even when the signature fails.
			o.result, o.reason = authres.ResultNeutral, "testing key: "+o.reason
		}
	}
	return out
}

// testing reports whether the key record of sig, as fetched, has t=y.
func (v *verifier) testing(sig signature) bool {
	v.mu.Lock()
	txt := v.keys[strings.ToLower(dkim.RecordName(sig.domain, sig.selector))]
	v.mu.Unlock()
	if len(txt) != 1 {
		return false
	}
	rec, err := dkim.ParseRecord(txt[0])
	return err == nil && rec.Testing()
}

// classify maps a go-msgauth verification error to an RFC 8601 §2.7.1
// result and a reason fit for a header: a key lookup error is reduced to
// its kind, because the resolver's error names our DNS server.
func classify(err error) (authres.ResultValue, string) {
	switch {
	case err == nil:
		return authres.ResultPass, ""
	case msgauth.IsTempFail(err):
		return authres.ResultTempError, "key unavailable"
	case msgauth.IsPermFail(err):
		msg := strings.TrimPrefix(err.Error(), "dkim: ")
		if strings.HasPrefix(msg, "no key for signature") {
			msg = "no key for signature"
		}
		return authres.ResultPermError, msg
	}
	// go-msgauth returns its other signature errors (body hash or
	// signature mismatch, an l= tag) as a failure of the signature.
	return authres.ResultFail, strings.TrimPrefix(err.Error(), "dkim: ")
}

// headerB returns the shortest prefix of each signature's b= of at least
// headerBMin characters that no other signature shares (RFC 6008 §4).
func headerB(sigs []signature) []string {
	out := make([]string, len(sigs))
	for i, s := range sigs {
		n := min(headerBMin, len(s.b))
		for ; n < len(s.b); n++ {
			unique := true
			for j, o := range sigs {
				if j != i && strings.HasPrefix(o.b, s.b[:n]) {
					unique = false
					break
				}
			}
			if unique {
				break
			}
		}
		out[i] = s.b[:n]
	}
	return out
}
