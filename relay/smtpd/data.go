package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/queue/mlog"
	"smarthost/relay/dkim"
	"smarthost/relay/inbound"
	"smarthost/relay/reply"
)

// Data implements smtp.Session. It is the path from the client's bytes to
// the 250 reply:
//
//  1. normalize line endings and refuse bare CR, NUL and over-long lines
//     (lineNormalizer), with the read deadline renewed for every read;
//  2. read the header section (bounded by max_header_size) and refuse a
//     message that has looped through too many hops;
//  3. on submission: require exactly one From: address, check it against
//     the user's sender permissions, and start DKIM signing for it;
//  4. on mx: start the SPF, DKIM and DMARC checks (relay/inbound) and
//     drop forged Authentication-Results;
//  5. stream header and body into a spool draft, hashing the body for
//     DKIM (signing or verifying) on the way — the message is never held
//     whole in memory — and refuse what the sender's domain asks to
//     refuse;
//  6. prepend DKIM-Signature or the check results, then our Received
//     line, commit (fsync) and only then answer "250 2.0.0 Ok: queued as
//     ID".
//
// Any failure aborts the draft; nothing half-written is ever queued.
func (s *session) Data(r io.Reader) error {
	tx := s.snapshot()
	if tx.from == nil || len(tx.rcpts) == 0 {
		// go-smtp checks this itself; keep the invariant local too.
		return reply.LocalError.SMTP()
	}
	id, summary, err := s.receive(r, tx)
	if err != nil {
		rep := reply.Classify(err)
		s.logRejected(id, "data", rep, err.Error(), slog.String(mlog.From, tx.fromString()),
			slog.Int(mlog.RcptCount, len(tx.rcpts)), slog.String(mlog.Checks, summary.checks))
		return rep.SMTP()
	}
	s.logReceived(id, summary)
	// go-smtp sends any *SMTPError it is given as the reply, 2xx included;
	// that is the only way to put the queue ID in the 250 as Postfix does.
	return reply.Queued(id).SMTP()
}

// maxHops bounds the Received fields a message may carry, Postfix's
// hopcount_limit; RFC 5321 §6.3 asks for a limit of at least 100 that a
// loop reaches quickly anyway. A routing mistake (a relay domain sent back
// to our own MX) then ends in a refusal instead of an endless loop.
const maxHops = 50

// receive runs steps 1-6 of Data and returns the queue ID.
func (s *session) receive(r io.Reader, tx transaction) (string, envelopeSummary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Limits.Timeout.Duration)
	defer cancel()
	maxLine := int(s.o.Limits.MaxLineLength.Bytes)
	in := bufio.NewReaderSize(newLineNormalizer(&deadlineReader{r: r, s: s}, maxLine), 32<<10)

	header, err := dkim.ReadHeader(in, int(s.o.Limits.MaxHeaderSize.Bytes))
	if err != nil {
		return "", envelopeSummary{}, err
	}
	if n := countReceived(header); n >= maxHops {
		return "", envelopeSummary{}, reply.TooManyHops.Because(fmt.Errorf("%d Received fields", n))
	}
	var hashers []io.Writer // see the body as it streams to the spool
	var signer *dkim.Signer
	if s.srv.role == config.RoleSubmission {
		if signer, err = s.checkAndSign(header, tx.user); err != nil {
			return "", envelopeSummary{}, err
		}
		if signer != nil {
			hashers = append(hashers, signer)
		}
	}
	var check *inbound.Check
	if s.srv.role == config.RoleMX && s.o.Inbound != nil {
		check = s.o.Inbound.Begin(ctx, inbound.Envelope{ClientIP: s.clientIP, Helo: tx.helo, MailFrom: tx.fromString()})
		defer check.Abort()
		// The stored header loses Authentication-Results fields that
		// claim to be ours (RFC 8601 §5); nothing else changes.
		if header, err = check.Header(header); err != nil {
			return "", envelopeSummary{}, reply.LocalError.Because(err)
		}
		hashers = append(hashers, check)
	}

	draft, err := s.o.Spool.Create()
	if err != nil {
		return "", envelopeSummary{}, err
	}
	id := string(draft.ID())
	committed := false
	defer func() {
		if !committed {
			draft.Abort()
		}
	}()
	size, err := store(draft, header, in, hashers)
	if err != nil {
		return id, envelopeSummary{}, err
	}
	summary := envelopeSummary{from: tx.fromString(), rcptCount: len(tx.rcpts)}
	var checks []byte
	if check != nil {
		verdict, err := check.Finish(ctx)
		summary.checks = verdict.Summary
		if err != nil {
			return id, summary, err
		}
		checks = verdict.Header
	}
	prepend, domain, err := s.prepend(id, tx, signer, checks)
	if err != nil {
		return id, summary, err
	}
	if err := draft.Commit(s.envelope(tx), prepend); err != nil {
		return id, summary, err
	}
	committed = true
	summary.size, summary.dkimDomain = int64(len(prepend))+size, domain
	return id, summary, nil
}

// store writes the header and streams the body into the draft and to each
// hasher (the DKIM signer, the inbound checks), which have seen the header
// already. It returns the bytes stored.
func store(draft Draft, header []byte, body io.Reader, hashers []io.Writer) (int64, error) {
	if _, err := draft.Write(header); err != nil {
		return 0, err
	}
	var w io.Writer = draft
	if len(hashers) > 0 {
		w = io.MultiWriter(append([]io.Writer{draft}, hashers...)...)
	}
	n, err := io.Copy(w, body)
	return int64(len(header)) + n, err
}

// prepend returns the header fields we add in front of the message: the
// DKIM signatures of submission mail, the inbound checks' Received-SPF and
// Authentication-Results of mx mail (above our Received, RFC 7208 §9.1),
// then our Received line.
func (s *session) prepend(id string, tx transaction, signer *dkim.Signer, checks []byte) ([]byte, string, error) {
	out := append([]byte(nil), checks...)
	var domain string
	if signer != nil {
		sigs, err := signer.Finish()
		if err != nil {
			// A key matched but signing failed: never send the message
			// unsigned (DESIGN: security invariants).
			return nil, "", reply.LocalError.Because(err)
		}
		out, domain = append(out, sigs.Header...), sigs.Domain
	}
	out = append(out, receivedHeader(receivedInfo{
		helo:     tx.helo,
		clientIP: s.clientIP.String(),
		hostname: s.o.Hostname,
		user:     tx.user,
		queueID:  id,
		tls:      s.tls,
		esmtp:    true,
		utf8:     tx.mailOpts.UTF8,
		rcpts:    tx.rcpts,
		now:      s.o.Now(),
	})...)
	return out, domain, nil
}

// envelope is what the queue keeps about the transaction.
func (s *session) envelope(tx transaction) queue.Envelope {
	return queue.Envelope{
		From:       tx.fromString(),
		Recipients: tx.rcpts,
		UTF8:       tx.mailOpts.UTF8,
		EightBit:   tx.mailOpts.Body == "8BITMIME",
		Origin: queue.Origin{
			Listener: s.srv.name,
			Role:     string(s.srv.role),
			ClientIP: s.clientIP.String(),
			Helo:     tx.helo,
			User:     tx.user,
			TLS:      s.tlsOrEmpty(),
		},
	}
}

// countReceived counts the Received fields of a header section.
func countReceived(header []byte) int {
	n := 0
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i+1], header[i+1:]
		} else {
			header = nil
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("Received")) {
			n++
		}
	}
	return n
}

func (s *session) tlsOrEmpty() string {
	if s.tls == nil {
		return ""
	}
	return s.tlsSummary()
}

// checkAndSign applies the submission rules to the header: exactly one
// From: address (DMARC aligns on it, RFC 7489 §6.6.1), which an
// authenticated user must be allowed to use, and a DKIM signer for it
// (nil when no key signs for that address).
func (s *session) checkAndSign(header []byte, user string) (*dkim.Signer, error) {
	from, err := dkim.ParseFrom(header)
	if err != nil {
		return nil, err
	}
	if user != "" && s.o.Senders != nil && !s.o.Senders.Allowed(user, from) {
		return nil, reply.FromNotOwned.Because(errors.New("From: " + from + " not allowed for user " + user))
	}
	if s.o.DKIM == nil {
		return nil, nil
	}
	signer, err := s.o.DKIM.Signer(header, from)
	if err != nil {
		return nil, reply.LocalError.Because(err)
	}
	return signer, nil
}

// deadlineReader renews the connection's read deadline before every read of
// message content: go-smtp sets it once per command, so without this a long
// upload on a slow link would time out although the client never stalled.
type deadlineReader struct {
	r io.Reader
	s *session
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if t := d.s.o.Limits.Timeout.Duration; t > 0 {
		d.s.conn.Conn().SetReadDeadline(time.Now().Add(t))
	}
	return d.r.Read(p)
}
