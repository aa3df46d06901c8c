// Package greylist implements greylisting as postgrey does it: mail from
// an unknown (client network, sender, recipient) triplet is deferred with
// a 4xx the first time; a well-behaved MTA retries, and a retry at least
// the delay later passes. Spam software that never retries never gets
// through, and real mail is only delayed once per triplet.
//
// The rules, with postgrey's option for each:
//
//   - The client is its network: the /24 of an IPv4 address, the /64 of
//     an IPv6 address (postgrey's default lookup-by-subnet), since large
//     senders retry from another host of the same pool.
//   - The sender is lower-cased and normalised so that per-message
//     variants of one sender make one triplet: postgrey's substitutions
//     (a +extension is dropped, every number standing alone as a word
//     becomes "#", which folds VERP bounce addresses such as
//     list-bounces-1234@…), plus two of our own: an SRS0 address
//     (SRS0=hash=tt=domain=user@forwarder) stands for the original
//     sender user@domain, and a BATV tag (prvs=tag=user@…) is dropped.
//     The recipient is lower-cased only.
//   - The first attempt of a triplet is deferred for the delay
//     (inbound.greylist_delay, postgrey --delay, 5 minutes); retries
//     before it ends are deferred too, and told how long is left.
//   - A retry after the delay passes, and so does all mail of the triplet
//     for the retention (inbound.greylist_retention, postgrey --max-age,
//     35 days) after its last pass. To bound writes, the last pass is
//     recorded at most once an hour, so the retention may count from up
//     to an hour earlier.
//   - A triplet that does not retry within the retry window (postgrey
//     --retry-window, 2 days, counted from its first attempt) is
//     forgotten, and its next attempt starts again.
//
// Not done: postgrey's auto-whitelisting of clients after a number of
// passed triplets (--auto-whitelist-clients), and static whitelists. The
// session, not this package, exempts trusted networks and authenticated
// clients.
//
// # State
//
// The triplets live in memory and in one file, Dir/greylist.db, a log of
// text records, one per line, each carrying a checksum: a record is
// appended when a triplet is first seen and when it passes, and the last
// record of a triplet wins when the file is read. Triplets are stored as
// truncated SHA-256 hashes, so the file holds no addresses. On [Open], and
// whenever the log holds far more records than live triplets, the file is
// rewritten without the dead ones: to a temporary file, fsynced, renamed
// over the old one, and the directory fsynced, so a crash leaves either
// the old file or the new one.
//
// Appends are not fsynced: a crash of the process loses nothing (the
// kernel has the data), and a crash of the machine loses at most the last
// records written, whose triplets are then greylisted once more. A torn or
// damaged record is skipped when the file is read, never fatal: the worst
// case of any damage is forgetting triplets. The file is owned by one
// process at a time; it is not locked.
package greylist
