// Package relay wires smarthost together: [New] builds the listeners and
// their sessions, the queue, the deliverer, the control socket and the
// certificate source from one configuration, [Server.Run] runs them, and
// [Server.Reload] applies a new configuration on SIGHUP. It holds no mail
// logic of its own and never writes spool files; each step below lives in
// the package named.
//
// # The life of one message
//
//  1. A client connects to a listener (relay/smtpd). The connection gate
//     refuses banned IPs and clients over the connection limits.
//  2. On a submission listener the client authenticates (auth: ban check,
//     then argon2id/bcrypt check) or is in trusted_networks; on an mx
//     listener anyone may talk, but only for relay domains.
//  3. MAIL and RCPT are checked (relay/address for syntax and routing
//     tricks, relay/route for which recipients are ours); every refusal is
//     a reply from relay/reply and one "rejected" log line.
//  4. DATA streams through the line normalizer (bare LF → CRLF, bare CR
//     refused), the header is read, and on submission the one From:
//     address is checked and a DKIM signer chosen (relay/dkim).
//  5. The message streams into a queue draft while the body is hashed;
//     the DKIM-Signature and our Received line are prepended; the draft
//     is committed: data fsynced, envelope record fsynced and renamed,
//     directory fsynced (queue). Only then: "250 2.0.0 Ok: queued as ID"
//     and one "received" line.
//  6. The queue's scheduler hands the message to the deliverer
//     (relay/deliver), which routes each recipient (relay/route:
//     transport map, relayhost, else MX), groups recipients by next hop,
//     and sends each group in one SMTP transaction with STARTTLS as policy
//     requires, reusing connections.
//  7. Each recipient is delivered, deferred (retried on the retry
//     schedule) or failed; one "delivered"/"deferred"/"bounced" line each.
//  8. Failed and expired recipients produce one RFC 3464 DSN to the
//     sender (never to the null sender), queued and delivered like any
//     message; when every recipient is done the message is removed.
//
// # Glossary
//
// Envelope: MAIL FROM and RCPT TO. Message: header and body bytes. Next
// hop: where a recipient's mail goes next, in Postfix syntax
// (smtp:[host]:port). Relay domain: a domain we are the MX for and forward
// to the home server. Trusted network: a client network that may relay
// without AUTH. Listener role: submission or mx. Spool: the queue's files.
// Queue ID: the message's name in the spool and in every log line. DSN:
// delivery status notification (a bounce).
package relay
