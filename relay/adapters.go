package relay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"smarthost/auth"
	"smarthost/queue"
	"smarthost/relay/dkim"
	"smarthost/relay/smtpd"
)

// The small adapters between the session's interfaces (relay/smtpd) and
// the packages that implement them. They hold no logic of their own.

// spool lets the session write into the queue.
type spool struct{ q *queue.Queue }

func (s spool) Create() (smtpd.Draft, error) { return s.q.Create() }

// authenticator joins the ban guard (which checks bans before hashing) to
// the session's interface.
type authenticator struct {
	guard   *auth.Guard
	timeout time.Duration
}

func (a authenticator) Authenticate(ip netip.Addr, username, password string) smtpd.AuthResult {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	res, err := a.guard.Authenticate(ctx, auth.Attempt{ClientIP: ip, User: username, Password: password})
	out := smtpd.AuthResult{Err: err, NewBan: res.BanStarted}
	if !res.BanUntil.IsZero() {
		out.BanUntil = res.BanUntil.UTC().Format(time.RFC3339)
	}
	return out
}

func (a authenticator) Banned(ip netip.Addr) bool {
	_, banned := a.guard.Banned(ip)
	return banned
}

// dsnSigner signs the DSNs the queue generates, with the key chosen for
// their From: (MAILER-DAEMON@hostname), so bounces we send are signed like
// any other outbound mail when a key matches. No key: unsigned.
func dsnSigner(current func() *dkim.Table) func(msg []byte) ([]byte, error) {
	return func(msg []byte) ([]byte, error) {
		table := current()
		if table == nil {
			return nil, nil
		}
		r := bufio.NewReader(bytes.NewReader(msg))
		header, err := dkim.ReadHeader(r, len(msg))
		if err != nil {
			return nil, fmt.Errorf("relay: sign DSN: %w", err)
		}
		from, err := dkim.ParseFrom(header)
		if err != nil {
			return nil, fmt.Errorf("relay: sign DSN: %w", err)
		}
		signer, err := table.Signer(header, from)
		if err != nil || signer == nil {
			return nil, err
		}
		if _, err := r.WriteTo(signer); err != nil {
			return nil, fmt.Errorf("relay: sign DSN: %w", err)
		}
		sigs, err := signer.Finish()
		if err != nil {
			return nil, fmt.Errorf("relay: sign DSN: %w", err)
		}
		return sigs.Header, nil
	}
}
