// Package inbound checks the mail that arrives on mx listeners, in place of
// policyd-spf, OpenDKIM's verifier and OpenDMARC: SPF (RFC 7208) for the
// envelope sender, DKIM (RFC 6376) for every signature, and DMARC
// (RFC 7489) for the From domain, recorded in a Received-SPF field and one
// Authentication-Results field (RFC 8601) with our hostname as
// authserv-id. In enforce mode it refuses what the sender's domain asks to
// refuse, and nothing else.
//
// It owns the checks and the header fields they produce. It must not touch
// SMTP, the spool or the network other than through the resolve.Resolver
// it is given; it never logs, and knows no reply codes: the session maps
// its errors ([ErrSPFFail], [ErrDMARCReject], [ErrTempFail]) through
// relay/reply. It never signs and never changes a byte of the message other
// than removing Authentication-Results fields that forge our authserv-id.
//
// # Use by the SMTP session (mx listeners)
//
//  1. [Checker.Begin] once the envelope is known (at DATA at the latest):
//     SPF starts in the background.
//  2. [Check.Header] with the header section from relay/dkim.ReadHeader;
//     store the header it returns, not the one given. DKIM verification
//     and DMARC policy discovery start.
//  3. Copy the body to the spool and to [Check.Write] together
//     (io.MultiWriter): DKIM hashes it as it streams; nothing is held.
//  4. [Check.Finish]: prepend Verdict.Header above our Received field;
//     an error wrapping ErrSPFFail or ErrDMARCReject is a 550 5.7.1,
//     ErrTempFail a 451, any other error a local error (451 4.3.0).
//  5. defer [Check.Abort], so that a session that ends early leaves no
//     goroutine or lookup behind.
//
// # Modes
//
// Each of inbound.spf, inbound.dkim and inbound.dmarc is off, tag or
// enforce. Off adds nothing and looks nothing up, with one exception:
// DMARC is defined on the results of SPF and DKIM (RFC 7489 §4), so while
// DMARC is on, both are evaluated (and reported in Authentication-Results,
// so the DMARC result can be explained) whatever their own mode; their
// mode then only decides Received-SPF and SPF's own refusals. DKIM alone
// never refuses (RFC 6376 §6.3: a failed signature is like no signature),
// so its enforce acts as tag.
//
// # Decisions where the RFCs leave a choice
//
//   - DNS errors are temperror and never refuse. Under enforce, a
//     temperror that could have decided a refusal answers ErrTempFail
//     (451) so the sender retries; policyd-spf's default would accept
//     instead, but the issue asks for 451.
//   - pct= is honoured (RFC 7489 §6.6.4), as OpenDMARC does: a message
//     not sampled gets the next policy down (reject → quarantine →
//     none). Options.Rand makes the sampling testable.
//   - sp= applies when the record was found at the Organizational Domain
//     for a From domain below it; a record at the From domain itself
//     applies its p=.
//   - No From field gives dmarc=none; several From domains are each
//     evaluated and the strictest outcome wins; see fromDomains.
//   - DKIM verifies at most maxSignatures signatures; t=y keys turn a
//     fail into neutral (RFC 6376 §3.6.1). A body with more than
//     maxBlankRun bytes of blank lines in a row (other than at its end)
//     is not verified (dkim=policy): go-msgauth's canonicalizers hold such
//     a run, and "simple" copies it again on every read (see write in
//     dkim.go).
//
// # Invariants
//
//   - The stored header differs from the received one only by the removed
//     Authentication-Results fields claiming our authserv-id (any case,
//     after comments and folding).
//   - A Checker is immutable and safe for concurrent use; a Check belongs
//     to one session goroutine. After Finish or Abort has returned, no
//     goroutine of the Check is running.
//   - Header fields we write are folded to lines of at most 78 characters
//     where the syntax allows.
//
// # Glossary
//
// authserv-id: the name in front of an Authentication-Results field, saying
// who vouches for the results (RFC 8601 §2.5). Alignment: the SPF or DKIM
// domain being the From domain (strict) or sharing its Organizational
// Domain (relaxed), RFC 7489 §3.1. Organizational Domain: the registered
// domain, one label below a public suffix (RFC 7489 §3.2).
package inbound
