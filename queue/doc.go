// Package queue is the durable spool: it takes messages from SMTP sessions,
// keeps them on disk with per-recipient state, hands them to a [Deliverer]
// on a retry schedule, bounces permanent failures and expired mail with
// RFC 3464 DSNs, and offers the admin operations of mailq, postcat,
// postqueue and postsuper.
//
// It owns the spool directory (state_dir/queue) and nothing else. It knows
// nothing of SMTP sessions, routing or DKIM: sessions write through
// [Queue.Create] and [Draft], delivery goes out through the [Deliverer]
// interface that relay/deliver implements, and a DSN signer is injected as
// a function. It must not import relay, auth or go-smtp.
//
// # Invariants
//
//   - A message is visible to the scheduler only after its data file and
//     envelope record are fsynced and renamed and the spool directory is
//     fsynced; only then does [Draft.Commit] return nil and the session
//     answer 250. The envelope record's rename is the commit point.
//   - After a crash at any moment, every committed message is delivered at
//     least once, and nothing half-written is ever delivered: recovery
//     ([Open]) deletes temporaries and data without a record, and sets
//     aside records whose data is missing or the wrong size.
//   - Every failure to store a message wraps [ErrStorage] and leaves no
//     files behind; the session answers 452 4.3.1.
//   - Memory holds envelope records only; message data is streamed from
//     disk by [Delivery.Open].
//   - A spare file (NAME.spare) holds no message: it gets a committed
//     name only after its old content has been overwritten, cut off and
//     fsynced, and a data file still open for reading never becomes one.
//   - Each state change after an attempt is written the same atomic way
//     (temporary record, fsync, rename, directory fsync) before the next
//     attempt of that message.
//   - At most Options.Concurrency deliveries run at once, and at most one
//     per message.
//
// # Life of a message
//
//  1. Create allocates the queue ID and a temporary data file (made from
//     a spare file when there is one; see spool.go); Write streams the
//     data to it; Commit makes it durable (see above) and schedules it at
//     once. Concurrent commits share directory fsyncs (group commit), so
//     each pays for two file fsyncs and a share of one directory fsync.
//  2. Run pops due messages off a heap ordered by next attempt time and
//     calls the Deliverer with every pending or deferred recipient.
//  3. Each recipient becomes delivered, failed (permanent) or deferred.
//     Deferred ones are retried after Retry[attempts-1] (the last step
//     repeats) until MaxLifetime after arrival, when they expire and fail.
//  4. Failed recipients are reported in one DSN per attempt to the sender,
//     queued through the same durable path with the null sender; never
//     for a message that itself has the null sender.
//  5. When every recipient is delivered or failed and reported, the
//     message's files are removed (kept as spares for later messages, a
//     data file only if no one is reading it) and "removed" is logged.
//
// Where the issue is silent the queue does what Postfix does, and the code
// says so where it matters.
package queue
