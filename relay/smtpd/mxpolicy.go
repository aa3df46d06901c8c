package smtpd

import (
	"context"
	"log/slog"

	"smarthost/queue/mlog"
	"smarthost/relay/address"
	"smarthost/relay/greylist"
	"smarthost/relay/recipients"
	"smarthost/relay/reply"
)

// mxRecipientPolicy applies what an mx listener checks once a recipient is
// known to be ours, in Postfix's order: the client against DNS blocklists
// (once per session), the recipient against the relay_recipients table and
// verification probes, then greylisting — last, so no triplet is stored
// for a recipient that does not exist.
func (s *session) mxRecipientPolicy(rcpt address.Address) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Limits.Timeout.Duration)
	defer cancel()
	if err := s.checkBlocklists(ctx); err != nil {
		return err
	}
	w := rcpt.String()
	if s.o.Recipients != nil {
		res := s.o.Recipients.Check(ctx, w)
		switch res.Verdict {
		case recipients.RejectUnknown:
			return s.reject("rcpt", reply.UnknownRecipient, res.Reason, slog.String(mlog.Rcpt, w))
		case recipients.TempFail:
			return s.reject("rcpt", reply.UnverifiedRecipient, res.Reason, slog.String(mlog.Rcpt, w))
		}
	}
	if s.o.Greylist != nil && !s.trusted() {
		s.mu.Lock()
		from := s.tx.fromString()
		s.mu.Unlock()
		d, err := s.o.Greylist.Check(greylist.Triplet{Client: s.clientIP, Sender: from, Recipient: w})
		if err != nil {
			// The decision stands; only its record was not saved.
			s.log.Warn("greylist_state", slog.String(mlog.Error, err.Error()))
		}
		if !d.Pass {
			return s.reject("rcpt", reply.Greylisted, "greylisted ("+string(d.Status)+"), retry in "+d.RetryAfter.String(),
				slog.String(mlog.From, from), slog.String(mlog.Rcpt, w))
		}
	}
	return nil
}

// checkBlocklists asks the DNS blocklists about the client once per
// session. A list that cannot be asked counts as not listing the client,
// as in Postfix (fail open), and the failure is logged.
func (s *session) checkBlocklists(ctx context.Context) error {
	if s.o.DNSBL == nil || s.trusted() {
		return nil
	}
	if s.blocklist == nil {
		res := s.o.DNSBL.Check(ctx, s.clientIP)
		if res.Err != nil {
			s.log.Warn("dnsbl_lookup", slog.String(mlog.ClientIP, s.clientIP.String()), slog.String(mlog.Error, res.Err.Error()))
		}
		s.blocklist = &res
	}
	if s.blocklist.Listed {
		return s.reject("rcpt", reply.Blocklisted(s.blocklist.Zone), "client listed by "+s.blocklist.Zone+" ("+s.blocklist.Answer.String()+")")
	}
	return nil
}
