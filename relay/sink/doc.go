// Package sink is a small receiving SMTP server that records what it is
// sent: envelopes and the exact message bytes. It stands in for "the next
// hop" wherever smarthost needs one on loopback — in the delivery tests and
// in `smarthost demo`.
//
// It owns only its own listener and connections. It never writes files,
// never relays, and keeps every accepted message in memory, so it is for
// tests and demonstrations, not for receiving real mail.
//
// Behaviour is configured up front through [Options]: STARTTLS or implicit
// TLS, SMTPUTF8, a size limit, and a [Options.Reply] hook that may refuse
// any EHLO, MAIL, RCPT or DATA with a chosen reply, or drop the connection.
// [Sink.Wait] lets a test wait for N messages on a channel instead of
// sleeping.
//
// Invariants: a message is recorded only when its DATA was accepted; its
// Data is byte for byte what the client sent, dot-unstuffed, with CRLF line
// ends kept.
package sink
