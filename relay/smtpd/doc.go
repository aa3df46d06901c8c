// Package smtpd is smarthost's SMTP server side: the go-smtp backend, one
// session per client, the listener roles, limits, the AUTH gate and the
// DATA path up to the queue.
//
// Roles (config.Role):
//
//   - submission: MAIL requires AUTH (over TLS only) or a client in
//     trusted_networks; RCPT may then go anywhere; the message must have
//     exactly one From: address, which the user must be allowed to use,
//     and it is DKIM-signed when a key matches.
//   - mx: anyone may connect, AUTH is not offered, and RCPT is accepted
//     only for relay domains and transport-map destinations (never an open
//     relay). Nothing is signed.
//
// For every client on every role: sender-specified routing (user%host,
// host!user, "user@host"@relay) and address-literal recipients are
// refused; bare LF is normalized to CRLF and bare CR refused before
// anything is signed or queued, so SMTP smuggling cannot split a message.
//
// The package owns no storage: accepted messages go to a [Spool] (the
// queue), and it never writes spool files itself. Every reply it sends comes
// from relay/reply. It logs one line per event (received, rejected,
// auth_failed, auth_banned) with the keys of queue/mlog.
//
// Invariant: the client hears 250 only after [Draft.Commit] returned nil,
// i.e. after the message is durably in the queue.
package smtpd
