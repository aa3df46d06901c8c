// Package dkim signs outbound mail with DKIM (RFC 6376, RFC 8463 for
// Ed25519) and owns the key tooling behind `smarthost dkim`: key
// generation, the DNS TXT record, and the check of a published record
// against its private key. It plays the parts of OpenDKIM's KeyTable and
// SigningTable and of opendkim-genkey and opendkim-testkey.
//
// It owns:
//
//   - [Table]: the keys of the configuration's dkim section
//     ([config.DKIM]), and the choice of keys by the address in the From:
//     header.
//   - [ParseFrom]: the one From: address a message must carry (DMARC,
//     RFC 7489 §6.6.1, needs exactly one).
//   - [Signer]: the streaming signer. The SMTP session hands it the header
//     section, then writes the body through it as the body goes to the
//     spool; [Signer.Finish] returns the DKIM-Signature header fields to
//     prepend. The body is hashed as it streams and never held in memory.
//   - [Record], [Keygen] and [CheckKey]: the DNS record and the tooling.
//
// It must not touch SMTP, the spool or the network other than through the
// [resolve.Resolver] it is given. It never logs; callers log the outcome.
//
// # Use by the SMTP session
//
//  1. [ReadHeader] with limits.max_header_size; [ParseFrom] on the result
//     (its errors map to 550 5.7.1 replies).
//  2. For submission mail only, [Table.Signer] with the header and the
//     From address; nil means no key signs for it.
//  3. Write the header section to the spool, then copy the rest of DATA to
//     the spool and the Signer together (io.MultiWriter).
//  4. [Signer.Finish]; its Header goes into the spool's prepended header.
//     An error there is a 451: never send unsigned what a key matches.
//
// # Why the signer is not go-msgauth's
//
// go-msgauth's dkim.Signer formats the DKIM-Signature field itself: the
// first line runs to about 90 characters and the h= tag, with the header
// list below, is one line of about 200. RFC 5322 §2.1.1 says lines SHOULD
// be at most 78 characters, and the field cannot be refolded after signing
// (with simple header canonicalization every byte is signed; with relaxed,
// folding inside h= adds a space that is signed too). Its Signer also runs
// a goroutine and a pipe per key and hashes the body once per key. So this
// package canonicalizes (RFC 6376 §3.4), hashes and formats the field
// itself (canon.go, header.go, sign.go) and hashes the body once for all
// keys. go-msgauth, the library chosen for DKIM, is what the tests verify
// every signature with, and so, independently, is dkimpy; BenchmarkSign
// and BenchmarkGoMsgauthSign compare the cost.
//
// # Invariants
//
//   - From is always signed, and From, Reply-To, Subject, To and Cc are
//     oversigned: listed in h= once more than they occur (signedHeaderNames
//     and oversigned in sign.go say which fields and why).
//   - Every signature carries t= and never l= (a body length limit lets
//     anyone append to a signed message).
//   - Existing DKIM-Signature fields are neither signed nor changed.
//   - Every line of the returned header fields is at most 78 characters.
//   - A [Table] is immutable after [Load] and safe for concurrent use; a
//     [Signer] belongs to one message and one goroutine.
//
// # Glossary
//
// SDID: the signing domain, the d= tag. Selector: the s= tag; the public
// key is the TXT record at <selector>._domainkey.<domain>. Oversigning:
// listing a header name in h= more often than it occurs, so that adding
// another instance breaks the signature (RFC 6376 §5.4.2, §8.15).
package dkim
