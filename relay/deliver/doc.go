// Package deliver is the outbound SMTP client: it implements
// queue.Deliverer, taking one attempt's recipients of a queued message to
// their next hops and reporting one queue.Result per recipient.
//
// One attempt, in steps:
//
//  1. Group the recipients by next hop (relay/route: transport map,
//     relayhost or MX) and TLS policy; each group is one SMTP transaction.
//  2. Resolve the next hop into hosts: MX by preference, A/AAAA when there
//     is no MX, a null MX or non-existent domain is a permanent failure,
//     a DNS failure a temporary one.
//  3. Take a slot of the destination's concurrency
//     (delivery.destination_concurrency).
//  4. Reuse a cached connection to one of the hosts (RSET, EHLO), or
//     connect to the hosts in order. Greeting, EHLO as the configured
//     hostname, then TLS by policy:
//     "may" uses STARTTLS whenever offered and, when the handshake fails,
//     connects again without it (Postfix does the same; logged as
//     tls_fallback); "encrypt" requires TLS; "verify" requires TLS with a
//     certificate valid for the host name; smtps next hops use implicit
//     TLS. A connection failure, a refused greeting or EHLO, or a TLS
//     failure the policy does not allow moves on to the next host
//     (RFC 5321 §5.1).
//  5. MAIL FROM (SIZE, SMTPUTF8 and BODY=8BITMIME as the server offers
//     them; a message that needs SMTPUTF8 fails permanently, 5.6.7, when
//     the server does not offer it), one RCPT TO per recipient — a
//     refused RCPT fails only that recipient — and DATA, streamed from
//     the spool, with the bytes exactly as queued.
//  6. Keep the connection for a short time for the next message to the
//     same host, as Postfix's connection cache does.
//
// It owns no retry schedule and writes nothing to the spool: the queue
// decides from each Result's Permanent flag whether to retry or bounce, and
// logs delivered/deferred. This package logs only per-command Debug traces
// (with conn_id) and tls_fallback events.
//
// Invariants: Deliver returns exactly one Result per recipient, even after
// a panic; every failure is an [*Error], and anything not understood is
// temporary; message data is never read whole into memory, and a message
// is never completed (final dot) unless all of it was read from the spool.
package deliver
