package smtpd

import (
	"context"
	"io"
	"net/netip"

	"smarthost/queue"
	"smarthost/relay/greylist"
	"smarthost/relay/recipients"
)

// The session depends on the queue, auth and routing only through these
// small interfaces; relay wires the real implementations (queue, auth,
// relay/route) and tests may pass fakes. DKIM signing is used directly
// (relay/dkim), since its work is pure computation.

// Spool is where accepted messages go: the durable queue.
type Spool interface {
	// Create starts a message and assigns its queue ID.
	Create() (Draft, error)
}

// Draft is a message being written to the spool. Write streams the content;
// Commit makes it durable and visible to delivery, after which (and only
// after which) the client may be told 250. Abort discards it.
type Draft interface {
	ID() queue.ID
	io.Writer
	Commit(env queue.Envelope, header []byte) error
	Abort()
}

// Authenticator checks SASL credentials and tracks failures per client IP.
type Authenticator interface {
	// Authenticate returns nil when the credentials are valid. A banned
	// client gets an error wrapping auth.ErrBanned without any password
	// being hashed; wrong credentials wrap auth.ErrInvalidCredentials.
	Authenticate(ip netip.Addr, username, password string) AuthResult
	// Banned reports whether ip is currently refused.
	Banned(ip netip.Addr) bool
}

// AuthResult is the outcome of one login attempt.
type AuthResult struct {
	Err error
	// NewBan is true when this failure made the client IP banned.
	NewBan bool
	// BanUntil is when the ban ends, if the IP is banned.
	BanUntil string
}

// SenderPolicy says which addresses an authenticated user may send as.
type SenderPolicy interface {
	Allowed(user, addr string) bool
}

// Destinations says which recipients an mx listener accepts: relay domains
// and addresses routed by the transport map.
type Destinations interface {
	IsRelayDestination(addr string) bool
}

// RecipientChecker is relay/recipients' Checker: whether a recipient of a
// relay domain exists behind it.
type RecipientChecker interface {
	Check(ctx context.Context, rcpt string) recipients.Result
}

// Greylister is relay/greylist's Greylist.
type Greylister interface {
	Check(t greylist.Triplet) (greylist.Decision, error)
}
