package inbound

import (
	"bytes"
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

	// The body as fed to the verifier (see write): a run of CRLFs held
	// back, as a count, and the run of blank bytes already passed on.
	pairs     int64 // "\r\n" held back
	cr        bool  // and a "\r" after them
	blank     int64 // trailing bytes passed on that are all SP, HT, CR, LF
	abandoned bool  // over maxBlankRun: nothing verified (policy)

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
	// The header section goes straight to the pipe: write's holding
	// back of CRLFs is for the body only.
	v.send(header)
	if !hasBody {
		// go-msgauth needs the empty line that ends the header section.
		v.send([]byte("\r\n"))
	}
	return v
}

// maxBlankRun bounds a run of blank lines (bytes that are all SP, HT, CR
// or LF) passed to go-msgauth. Its body canonicalizers keep such a run
// until the next other byte: "relaxed" in memory, "simple" (its trailing
// CRLFs) copied again on every 4 KiB read, which makes a body of 16 MiB of
// empty lines cost a minute of CPU. Runs of CRLF alone are held back here
// as a count instead (see write); any other run longer than this stops
// verification, and the signatures get dkim=policy. No real message has
// 64 KiB of blank lines in a row.
const maxBlankRun = 64 << 10

// crlfs is a run of CRLFs to write held-back line ends from; never
// changed.
var crlfs = bytes.Repeat([]byte("\r\n"), maxBlankRun/2)

// errAbandoned stops the verifier when a run of blank lines is too long.
var errAbandoned = errors.New("inbound: dkim: too many blank lines in a row")

// write feeds the next chunk of the body to the verifier.
//
// A run of CRLFs is not passed on as it comes but counted, and passed on
// only when other bytes follow. At the end of the body it is dropped:
// both canonicalizations ignore empty lines at the end of the body and
// add the final CRLF themselves (RFC 6376 §3.4.3, §3.4.4), so the body
// hash is the same, and a body ending in millions of empty lines costs
// nothing. Once the verifier has stopped reading, the rest of the body is
// not needed and is dropped here.
func (v *verifier) write(p []byte) error {
	if v.stopped || len(p) == 0 {
		return nil
	}
	if v.cr && p[0] == '\n' {
		v.pairs, v.cr, p = v.pairs+1, false, p[1:]
	}
	i := crlfSuffix(p)
	if i == 0 && !v.cr {
		v.hold(p)
		return nil
	}
	if err := v.flush(); err != nil || v.stopped {
		return err
	}
	if err := v.pass(p[:i]); err != nil || v.stopped {
		return err
	}
	v.hold(p[i:])
	return nil
}

// crlfSuffix returns where the longest suffix of p of the form
// ("\r\n")* ["\r"] starts.
func crlfSuffix(p []byte) int {
	i := len(p)
	if i > 0 && p[i-1] == '\r' {
		i--
	}
	for i >= 2 && p[i-2] == '\r' && p[i-1] == '\n' {
		i -= 2
	}
	return i
}

// hold counts s, of the form crlfSuffix finds, as held back. v.cr must be
// false.
func (v *verifier) hold(s []byte) {
	v.pairs += int64(len(s) / 2)
	v.cr = len(s)%2 == 1
}

// flush passes on the CRLFs held back.
func (v *verifier) flush() error {
	n := 2*v.pairs + int64(btoi(v.cr))
	if n == 0 {
		return nil
	}
	if v.blank+n > maxBlankRun {
		v.abandon()
		return nil
	}
	v.pairs, v.cr = 0, false
	v.blank += n
	if err := v.send(crlfs[:n&^1]); err != nil || n&1 == 0 {
		return err
	}
	return v.send([]byte("\r"))
}

// pass passes b on, keeping count of the blank run it ends with. The run
// it continues (its leading blank bytes) counts against maxBlankRun too:
// go-msgauth reads in 4 KiB pieces, not in our chunks.
func (v *verifier) pass(b []byte) error {
	lead := 0
	for lead < len(b) && isBlank(b[lead]) {
		lead++
	}
	j := len(b)
	for j > lead && isBlank(b[j-1]) {
		j--
	}
	if v.blank+int64(lead) > maxBlankRun || int64(len(b)-j) > maxBlankRun {
		v.abandon()
		return nil
	}
	if j == lead {
		v.blank += int64(lead) // all blank: the run goes on
	} else {
		v.blank = int64(len(b) - j)
	}
	return v.send(b)
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// send writes b to the verifier. An empty b is not written: io.Pipe
// would wait for a reader even for nothing.
func (v *verifier) send(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := v.pw.Write(b)
	switch {
	case errors.Is(err, errVerifierDone):
		v.stopped = true
		return nil
	case err != nil:
		return fmt.Errorf("inbound: dkim: %w", err)
	}
	return nil
}

// abandon stops verification: the signatures will be dkim=policy.
func (v *verifier) abandon() {
	v.abandoned, v.stopped = true, true
	v.pw.CloseWithError(errAbandoned)
}

// wait ends the message and waits for the verifier, or for ctx.
func (v *verifier) wait(ctx context.Context) error {
	if v.cr && !v.stopped {
		// A body ending in a lone CR: that CR, and the CRLFs before
		// it, are not empty lines at the end, and count.
		if err := v.flush(); err != nil {
			return err
		}
	}
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
		case v.abandoned:
			o.result, o.reason = authres.ResultPolicy, "body not verified: too many blank lines in a row"
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
