package smtpd

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"time"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/queue/mlog"
	"smarthost/relay/dkim"
	"smarthost/relay/reply"
)

// Data implements smtp.Session. It is the path from the client's bytes to
// the 250 reply:
//
//  1. normalize line endings and refuse bare CR, NUL and over-long lines
//     (lineNormalizer), with the read deadline renewed for every read;
//  2. read the header section (bounded by max_header_size);
//  3. on submission: require exactly one From: address, check it against
//     the user's sender permissions, and start DKIM signing for it;
//  4. stream header and body into a spool draft, hashing the body for
//     DKIM on the way (the message is never held whole in memory);
//  5. prepend DKIM-Signature and our Received line, commit (fsync) and only
//     then answer "250 2.0.0 Ok: queued as ID".
//
// Any failure aborts the draft; nothing half-written is ever queued.
func (s *session) Data(r io.Reader) error {
	if s.from == nil || len(s.rcpts) == 0 {
		// go-smtp checks this itself; keep the invariant local too.
		return reply.LocalError.SMTP()
	}
	id, summary, err := s.receive(r)
	if err != nil {
		rep := reply.Classify(err)
		if rep == reply.LocalError {
			s.log.Error("data", slog.String(mlog.QueueID, orNoQueue(id)), slog.String(mlog.Error, err.Error()))
		}
		s.logRejected(id, "data", rep, err.Error(), slog.String(mlog.From, s.fromString()), slog.Int(mlog.RcptCount, len(s.rcpts)))
		return rep.SMTP()
	}
	s.logReceived(id, summary)
	// go-smtp sends any *SMTPError it is given as the reply, 2xx included;
	// that is the only way to put the queue ID in the 250 as Postfix does.
	return reply.Queued(id).SMTP()
}

func orNoQueue(id string) string {
	if id == "" {
		return mlog.NoQueue
	}
	return id
}

// receive runs steps 1-5 of Data and returns the queue ID.
func (s *session) receive(r io.Reader) (string, envelopeSummary, error) {
	maxLine := int(s.o.Limits.MaxLineLength.Bytes)
	in := bufio.NewReaderSize(newLineNormalizer(&deadlineReader{r: r, s: s}, maxLine), 32<<10)

	header, err := dkim.ReadHeader(in, int(s.o.Limits.MaxHeaderSize.Bytes))
	if err != nil {
		return "", envelopeSummary{}, err
	}

	var signer *dkim.Signer
	if s.srv.role == config.RoleSubmission {
		signer, err = s.checkAndSign(header)
		if err != nil {
			return "", envelopeSummary{}, err
		}
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

	var body io.Writer = draft
	if signer != nil {
		// The signer has the header already; it hashes the body as it
		// streams to the spool.
		body = io.MultiWriter(draft, signer)
	}
	if _, err := draft.Write(header); err != nil {
		return id, envelopeSummary{}, err
	}
	n, err := io.Copy(body, in)
	if err != nil {
		return id, envelopeSummary{}, err
	}

	var prepend []byte
	summary := envelopeSummary{from: s.fromString(), rcptCount: len(s.rcpts)}
	if signer != nil {
		sigs, err := signer.Finish()
		if err != nil {
			// A key matched but signing failed: never send the message
			// unsigned (DESIGN: security invariants).
			return id, envelopeSummary{}, reply.LocalError.Because(err)
		}
		prepend = append(prepend, sigs.Header...)
		summary.dkimDomain = sigs.Domain
	}
	prepend = append(prepend, receivedHeader(receivedInfo{
		helo:     s.conn.Hostname(),
		clientIP: s.clientIP.String(),
		hostname: s.o.Hostname,
		user:     s.user,
		queueID:  id,
		tls:      s.tls,
		esmtp:    true,
		utf8:     s.mailOpts.UTF8,
		rcpts:    s.rcpts,
		now:      s.o.Now(),
	})...)
	summary.size = int64(len(prepend)+len(header)) + n

	env := queue.Envelope{
		From:       s.fromString(),
		Recipients: append([]string(nil), s.rcpts...),
		UTF8:       s.mailOpts.UTF8,
		EightBit:   s.mailOpts.Body == "8BITMIME",
		Origin: queue.Origin{
			Listener: s.srv.name,
			Role:     string(s.srv.role),
			ClientIP: s.clientIP.String(),
			Helo:     s.conn.Hostname(),
			User:     s.user,
			TLS:      s.tlsOrEmpty(),
		},
	}
	if err := draft.Commit(env, prepend); err != nil {
		return id, envelopeSummary{}, err
	}
	committed = true
	return id, summary, nil
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
func (s *session) checkAndSign(header []byte) (*dkim.Signer, error) {
	from, err := dkim.ParseFrom(header)
	if err != nil {
		return nil, err
	}
	if s.user != "" && s.o.Senders != nil && !s.o.Senders.Allowed(s.user, from) {
		return nil, reply.FromNotOwned.Because(errors.New("From: " + from + " not allowed for user " + s.user))
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
