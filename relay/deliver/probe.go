package deliver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/emersion/go-smtp"

	"smarthost/config"
	"smarthost/queue/mlog"
)

// ProbeStatus is what a recipient probe learned about the recipient. The
// words are Postfix's verify(8) statuses.
type ProbeStatus string

const (
	// ProbeAccepted: the next hop answered RCPT TO with 2xx.
	ProbeAccepted ProbeStatus = "accepted"
	// ProbeRejected: the next hop refused the recipient for good — a 5xx
	// reply to RCPT TO — or the recipient needs SMTPUTF8, which the next
	// hop does not offer, so no delivery could ever succeed.
	ProbeRejected ProbeStatus = "rejected"
	// ProbeUndetermined: nothing definite was learned about the
	// recipient: a 4xx reply to RCPT TO, or a failure before it (route,
	// DNS, connect, TLS, greeting, EHLO, or MAIL FROM:<> refused — even
	// with 5xx, since a refused null sender says nothing about the
	// recipient).
	ProbeUndetermined ProbeStatus = "undetermined"
)

// Valid reports whether s is one of the defined statuses.
func (s ProbeStatus) Valid() bool {
	switch s {
	case ProbeAccepted, ProbeRejected, ProbeUndetermined:
		return true
	}
	return false
}

// ProbeResult is the outcome of [Deliverer.Probe].
type ProbeResult struct {
	// Status is what was learned about the recipient.
	Status ProbeStatus
	// Err is why the recipient was not accepted, nil when it was. For
	// ProbeRejected it holds the RCPT TO failure, with the next hop's
	// reply in Line ("550 5.1.1 No such user"); for ProbeUndetermined
	// the failure at whatever step ended the probe.
	Err *Error
	// MX is the host that answered, as name[ip]:port; "" when no
	// connection was made.
	MX string
}

// Probe asks the recipient's next hop whether it would accept mail for
// rcpt, without sending any: greeting, EHLO, MAIL FROM:<>, RCPT TO:<rcpt>.
// This is Postfix's address verification probe (verify(8), which
// reject_unverified_recipient uses), except that Postfix sends the probe
// through its queue and this one talks to the next hop directly.
//
// The probe goes where mail for rcpt would go and as it would go: the
// same routing (transport map, relayhost, MX), TLS policy, dialer and
// per-destination concurrency as [Deliverer.Deliver]. It reuses a cached
// connection when there is one, and leaves its connection in the cache
// afterwards; the next user resets it with RSET, and an idle one ends with
// QUIT, as after a delivery. The null sender is used so that nothing a
// probe provokes can cause a bounce (RFC 5321 §4.5.5).
//
// Cancelling ctx ends the probe at once; the result is then
// ProbeUndetermined. Probe is safe for concurrent use, and does no
// caching: that is the caller's business.
func (d *Deliverer) Probe(ctx context.Context, rcpt string) (res ProbeResult) {
	d.init()
	// Debug traces and a panic log name the queue ID NOQUEUE: a probe
	// belongs to no message.
	defer func() {
		if v := recover(); v != nil {
			d.logPanic(mlog.NoQueue, v, debug.Stack())
			res = ProbeResult{Status: ProbeUndetermined, Err: temporary("deliver", "4.3.0", fmt.Errorf("internal error: %v", v))}
		}
	}()
	hop := d.router.Route(rcpt)
	hosts, err := d.router.Hosts(ctx, hop)
	if err != nil {
		return undetermined(fromRoute(err), "")
	}
	release, err := d.limiter.acquire(ctx, hop.String())
	if err != nil {
		return undetermined(temporary("connect", "4.4.1", fmt.Errorf("waiting for a connection to %s: %w", hop.String(), err)), "")
	}
	defer release()

	mode := tlsMode{policy: d.policyFor(rcpt, hop), implicit: hop.Transport == config.TransportSMTPS}
	for _, h := range hosts {
		for c := d.pool.get(poolKey{h.Name, h.Port, mode}); c != nil; c = d.pool.get(poolKey{h.Name, h.Port, mode}) {
			c.queueID = mlog.NoQueue
			if d.reuse(ctx, c) {
				return d.probeOn(ctx, c, rcpt)
			}
		}
	}
	// As in deliverGroup: each address in turn, keeping a temporary
	// failure over a permanent one.
	var fail *Error
	var failedMX string
	tried := 0
	for _, h := range hosts {
		for _, ip := range h.Addrs {
			if tried == maxAddresses || ctx.Err() != nil {
				break
			}
			tried++
			c, err := d.connect(ctx, mlog.NoQueue, h, ip, mode)
			if err == nil {
				return d.probeOn(ctx, c, rcpt)
			}
			if fail == nil || fail.Permanent || !err.Permanent {
				fail, failedMX = err, hostPort(h, ip)
			}
		}
	}
	if fail == nil {
		fail = temporary("connect", "4.4.1", fmt.Errorf("no host of %s tried: %w", hop.String(), ctx.Err()))
	}
	return undetermined(fail, failedMX)
}

// probeOn sends MAIL FROM:<> and RCPT TO on a ready connection, then keeps
// the connection for reuse or closes it, as run does after a delivery.
func (d *Deliverer) probeOn(ctx context.Context, c *conn, rcpt string) ProbeResult {
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	res, healthy := d.probeTransaction(c, rcpt)
	if !stop() {
		healthy = false
	}
	switch {
	case !healthy:
		c.raw.Close()
	case d.pool.put(c):
	default:
		d.bg.Go(func() { d.quit(c) })
	}
	return res
}

func (d *Deliverer) probeTransaction(c *conn, rcpt string) (res ProbeResult, healthy bool) {
	needUTF8 := !isASCII(rcpt)
	if ok, _ := c.client.Extension("SMTPUTF8"); needUTF8 && !ok {
		// RFC 6531: as in transaction, this recipient can never be
		// delivered to this next hop.
		e := permanent("MAIL FROM", "5.6.7", fmt.Errorf("SMTPUTF8 is required, but was not offered by host %s", c.mx))
		return ProbeResult{Status: ProbeRejected, Err: e, MX: c.mx}, true
	}
	err := c.client.Mail("", &smtp.MailOptions{UTF8: needUTF8})
	d.debug(c, "probe mail", mlog.From, "", mlog.Reply, outcome(c, err))
	if err != nil {
		return undetermined(fromReply("MAIL FROM", c.mx, err), c.mx), sessionGoesOn(err)
	}
	err = c.client.Rcpt(rcpt, nil)
	d.debug(c, "probe rcpt", mlog.Rcpt, rcpt, mlog.Reply, outcome(c, err))
	if err == nil {
		return ProbeResult{Status: ProbeAccepted, MX: c.mx}, true
	}
	e := fromReply("RCPT TO", c.mx, err)
	var se *smtp.SMTPError
	if e.Permanent && errors.As(err, &se) {
		return ProbeResult{Status: ProbeRejected, Err: e, MX: c.mx}, sessionGoesOn(err)
	}
	return undetermined(e, c.mx), sessionGoesOn(err)
}

func undetermined(e *Error, mx string) ProbeResult {
	return ProbeResult{Status: ProbeUndetermined, Err: e, MX: mx}
}
