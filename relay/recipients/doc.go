// Package recipients decides, at RCPT time on mx listeners, whether a
// recipient of a relay domain exists, so that mail for unknown users is
// refused during the SMTP session instead of accepted and bounced later
// (backscatter). It does what Postfix's relay_recipient_maps and
// reject_unverified_recipient do, in that order:
//
//  1. The recipient table (relay_recipients, relay_recipients_file): when
//     it has entries, a recipient it does not list is unknown — the
//     session refuses it with 550 5.1.1 (Postfix's
//     unknown_relay_recipient_reject_code). With no entries at all,
//     every recipient passes this step, as in Postfix when
//     relay_recipient_maps is empty.
//  2. Verification (verify_recipients): a recipient that passed step 1 is
//     checked with a RCPT probe to its next hop, the home server
//     (relay/deliver's Probe). A 5xx to the probe's RCPT TO makes it
//     unknown (550 5.1.1); a 2xx accepts it; anything else — the home
//     server down, a 4xx, a timeout — answers 450 4.1.1, never 550, so
//     the sending MTA retries and no mail is lost to our own trouble.
//     Postfix answers an unverified recipient with 450 by default
//     (unverified_recipient_reject_code); a definite 5xx from the home
//     server is reliable enough for 550, which spares senders days of
//     retries for a typo.
//
// Answers of probes are cached in memory, like Postfix's verify(8)
// cache, with Postfix's shape and shorter times: a recipient accepted is
// fresh for [DefaultPositiveRefresh], then still accepted for up to
// [DefaultPositiveExpire] while a probe in the background refreshes it —
// so a home server that is down does not turn known recipients away; a
// recipient refused is remembered for [DefaultNegativeTTL], short, so a
// mailbox just created soon receives mail; an undetermined answer is not
// cached. Concurrent checks of one address share one probe. The session
// waits for a probe at most [DefaultWait] (Postfix waits about as long,
// address_verify_poll_count × address_verify_poll_delay) and answers 450
// if it takes longer; the probe goes on and its answer is cached for the
// sender's retry.
//
// Addresses are compared case-insensitively, local part included, like
// Postfix's table lookups and every common mailbox store. The table
// understands address extensions with "+" as the delimiter (Debian's
// Postfix default, recipient_delimiter = +): user+tag@example.com matches
// an entry user@example.com. Probes ask about the address as given, so
// the home server applies its own delimiter.
//
// The package decides; it does not reply. The session maps [Verdict] to
// the reply (relay/reply) and logs [Result.Reason]. It does not check that
// the domain is a relay domain (relay/route does, before this).
package recipients
