package inbound

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"smarthost/config"
	"smarthost/relay/resolve"
)

// Errors wrapped by the error of [Check.Finish] when a check in enforce
// mode refuses the message. relay/reply maps them (issue 5 asks for
// 550 5.7.1 for ErrSPFFail and ErrDMARCReject, and a 451 for
// ErrTempFail). Test with errors.Is; the wrapping error carries the detail
// for the log, which may name DNS servers and must not go on the wire.
var (
	// ErrSPFFail: SPF is enforced and the result is "fail", which only a
	// "-" qualifier gives, in practice "-all" (RFC 7208 §8.4). softfail
	// ("~all"), neutral, none and permerror never refuse; policyd-spf's
	// defaults do the same. A message that passes DMARC is not refused
	// for SPF (see [Check.Finish]).
	ErrSPFFail = errors.New("inbound: spf fail")
	// ErrDMARCReject: DMARC is enforced, the message fails it, and the
	// From domain's policy after sp= and pct= is reject (RFC 7489 §6.6.4).
	ErrDMARCReject = errors.New("inbound: dmarc reject")
	// ErrTempFail: an enforced check could not be decided because of a
	// DNS error, and its outcome could have been a refusal. It is always
	// a 4xx: a temperror never turns into a 5xx.
	ErrTempFail = errors.New("inbound: temporary failure of a check")
)

// Options configures a [Checker].
type Options struct {
	// Hostname is our authserv-id in Authentication-Results
	// (RFC 8601 §2.5) and the receiver in Received-SPF: config's
	// hostname.
	Hostname string
	// Config holds the check modes and the quarantine header.
	Config config.Inbound
	// Resolver answers every DNS query of the checks. It may be nil only
	// when SPF, DKIM and DMARC are all off.
	Resolver resolve.Resolver
	// Now is the clock for DKIM signature expiry (x=); nil means
	// time.Now.
	Now func() time.Time
	// Rand returns a number in [0, n) for DMARC pct= sampling; nil means
	// math/rand/v2.IntN. Tests fix it.
	Rand func(n int) int
}

// Checker checks the mail arriving on mx listeners. It is immutable and
// safe for concurrent use; each message gets its own [Check].
type Checker struct {
	o          Options
	spf        config.CheckMode
	dkim       config.CheckMode
	dmarc      config.CheckMode
	quarantine []byte // the field with CRLF, or nil
}

// New returns a Checker. It fails for a mode that is not off, tag or
// enforce, for a missing Hostname, and for a missing Resolver when any
// check is on.
func New(opts Options) (*Checker, error) {
	c := &Checker{o: opts, spf: opts.Config.SPF, dkim: opts.Config.DKIM, dmarc: opts.Config.DMARC}
	for _, m := range []struct {
		key  string
		mode config.CheckMode
	}{{"spf", c.spf}, {"dkim", c.dkim}, {"dmarc", c.dmarc}} {
		if !m.mode.Valid() {
			return nil, fmt.Errorf("inbound: inbound.%s: unknown mode %q; use off, tag or enforce", m.key, m.mode)
		}
	}
	if opts.Hostname == "" {
		return nil, errors.New("inbound: no hostname for the authserv-id")
	}
	if opts.Resolver == nil && c.active() {
		return nil, errors.New("inbound: no resolver")
	}
	if q := strings.TrimSpace(opts.Config.QuarantineHeader); q != "" {
		name, _, ok := strings.Cut(q, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") || strings.ContainsAny(q, "\r\n") {
			return nil, fmt.Errorf("inbound: inbound.quarantine_header: %q is not one header field; write e.g. %q", q, "X-Spam-Flag: YES")
		}
		c.quarantine = []byte(q + "\r\n")
	}
	if c.o.Now == nil {
		c.o.Now = time.Now
	}
	if c.o.Rand == nil {
		c.o.Rand = rand.IntN
	}
	return c, nil
}

// active reports whether any check is on.
func (c *Checker) active() bool { return c.needSPF() || c.needDKIM() }

// needSPF and needDKIM report whether SPF and DKIM are evaluated: when on
// themselves, and whenever DMARC is on, which is defined on their results
// (RFC 7489 §4). Their own mode then only decides their own header field
// (Received-SPF) and their own refusals.
func (c *Checker) needSPF() bool  { return c.spf != config.CheckOff || c.dmarc != config.CheckOff }
func (c *Checker) needDKIM() bool { return c.dkim != config.CheckOff || c.dmarc != config.CheckOff }

// Envelope is what the SMTP session knows before DATA.
type Envelope struct {
	// ClientIP is the address of the connecting client.
	ClientIP netip.Addr
	// Helo is the name the client gave in EHLO or HELO.
	Helo string
	// MailFrom is the MAIL FROM address; "" is the null sender.
	MailFrom string
}

// Verdict is the outcome of a [Check].
type Verdict struct {
	// Header holds the fields to prepend, each ending in CRLF, folded to
	// 78 characters: Received-SPF (RFC 7208 §9.1) when SPF is on, one
	// Authentication-Results (RFC 8601) with every result evaluated, and
	// the configured quarantine field when DMARC is enforced and the
	// domain asks for quarantine. Prepend it above our own Received
	// field (RFC 7208 §9.1). Empty when every check is off.
	Header []byte
	// Summary is the results for the log line, e.g.
	// "spf=pass dkim=pass dmarc=pass", with one dkim result per signature
	// and one dmarc result per From domain ("dkim=pass,fail"), and
	// "action=reject", "action=tempfail" or "action=quarantine" when
	// enforce acted. "" when every check is off.
	Summary string
}

// Check is the check of one message. Calls come in this order, from one
// goroutine: [Checker.Begin], [Check.Header] once, [Check.Write] for each
// chunk of the body, [Check.Finish] once. [Check.Abort] may be called at
// any time, more than once, and after Finish; a session should defer it.
type Check struct {
	c   *Checker
	env Envelope

	ctx    context.Context // the checks' lookups; cancelled by Abort
	cancel context.CancelFunc

	spfDone chan struct{}
	spf     spfOutcome // valid once spfDone is closed

	headerDone bool
	finished   bool
	aborted    bool

	verifier *verifier // nil without signatures or with DKIM unused

	from       fromResult
	dmarcDone  chan struct{}
	dmarcFound []policyRecord // per from.domains; valid once dmarcDone is closed

	wg sync.WaitGroup // the SPF and DMARC goroutines; the verifier has its own
}

// Begin starts the check of a message from env. SPF, which needs only the
// envelope, starts at once in its own goroutine, so its DNS lookups run
// while the client sends the message. ctx bounds every lookup of the
// check; cancel it, or call [Check.Abort], to stop them.
func (c *Checker) Begin(ctx context.Context, env Envelope) *Check {
	ch := &Check{c: c, env: env}
	ch.ctx, ch.cancel = context.WithCancel(ctx)
	if c.needSPF() {
		ch.spfDone = make(chan struct{})
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			defer close(ch.spfDone)
			ch.spf = checkSPF(ch.ctx, c.o.Resolver, env)
		}()
	}
	return ch
}

// Header takes the message's header section, as relay/dkim.ReadHeader
// read it (the empty line that ends it included, if there is one), and
// returns the header section to store (header itself when nothing was
// removed).
//
// The stored header is the same bytes without the Authentication-Results
// fields that claim our authserv-id (RFC 8601 §5; see removeForged). They
// are removed even when every check is off, since the home server trusts
// that authserv-id either way. Every other byte is kept, DKIM-Signature
// fields included, so the home server can verify the signatures again.
//
// Header starts DKIM verification of the message as received (forged
// fields included: they are what a signer may have signed) and DMARC
// policy discovery for the From domain(s), each in its own goroutine.
func (ch *Check) Header(header []byte) ([]byte, error) {
	if ch.headerDone || ch.finished || ch.aborted {
		return nil, errors.New("inbound: Header called twice, or after Finish or Abort")
	}
	ch.headerDone = true
	stored, _ := removeForged(header, ch.c.o.Hostname)
	fields, rest := splitHeader(header)
	if ch.c.needDKIM() {
		ch.verifier = startVerifier(ch.ctx, ch.c.o.Resolver, fields, header, len(rest) > 0)
	}
	if ch.c.dmarc != config.CheckOff {
		ch.from = fromDomains(header, fields)
		ch.dmarcDone = make(chan struct{})
		ch.dmarcFound = make([]policyRecord, len(ch.from.domains))
		ch.wg.Add(1)
		go func() {
			defer ch.wg.Done()
			defer close(ch.dmarcDone)
			for i, d := range ch.from.domains {
				ch.dmarcFound[i] = discover(ch.ctx, ch.c.o.Resolver, d)
			}
		}()
	}
	return stored, nil
}

// Write takes the next chunk of the body (everything after the header
// section). Nothing of it is kept: with signatures to verify, the chunk is
// hashed before Write returns (runs of empty lines are only counted, see
// verifier.write). Until the verifier has its keys, Write waits for the
// key lookups, which the resolver's timeout and Begin's ctx bound. Write
// fails only after Abort or Finish, or before Header.
func (ch *Check) Write(p []byte) (int, error) {
	if !ch.headerDone || ch.finished || ch.aborted {
		return 0, errors.New("inbound: Write before Header, or after Finish or Abort")
	}
	if ch.verifier != nil {
		if err := ch.verifier.write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Abort stops the check: lookups are cancelled, the verifier stops
// reading, and Abort returns once every goroutine of the check has
// returned. Use it when the message is refused or the session ends before
// Finish; after Finish it does nothing.
func (ch *Check) Abort() {
	if ch.aborted || ch.finished {
		return
	}
	ch.aborted = true
	ch.cancel()
	if ch.verifier != nil {
		ch.verifier.abort()
	}
	ch.wg.Wait()
}
