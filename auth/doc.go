// Package auth decides who a client is and what it may do once it has said
// so: the users file and its password hashes, the SASL PLAIN and LOGIN
// server mechanisms, the failure counter that bans client IPs, and the
// sender permissions of the auth.senders table.
//
// It owns:
//
//   - [Users]: an immutable snapshot of the users file ("name:hash" lines,
//     argon2id or bcrypt), loaded with [LoadUsers];
//   - [Verifier]: checks a password against the current snapshot in
//     constant time with respect to the user's existence, bounds the number
//     of hash computations running at once, and remembers recent successes;
//     [Verifier.Swap] installs a new snapshot on SIGHUP;
//   - [UsersFile]: the editing behind `smarthost user`, which replaces the
//     file atomically and keeps every other line;
//   - [NewPlainServer] and [NewLoginServer]: go-sasl servers that hand the
//     user name and password to one function;
//   - [Guard]: counts failures per client IP (IPv6 per /64) and refuses a
//     banned client before any password is hashed;
//   - [Senders]: which MAIL FROM and From: addresses a user may use.
//
// It must not touch SMTP: it imports neither relay/ nor go-smtp, knows no
// reply codes (relay/reply maps [ErrInvalidCredentials], [ErrBanned] and
// [ErrMalformed]) and does not log. The session logs auth_failed and
// auth_banned from a [Result], so the line fail2ban matches is written in
// one place.
//
// Invariants:
//
//   - Plaintext passwords are never stored, logged or put in an error; the
//     verification cache holds only keyed hashes (HMAC with a per-process
//     random key).
//   - A banned client costs no hashing: [Guard.Authenticate] checks the ban
//     before it calls the verifier.
//   - A users file that does not parse completely is rejected as a whole, so
//     a reload with a broken file keeps the previous snapshot.
//   - Memory is bounded under attack: at most MaxConcurrent hashes are
//     computed at once, and the cache and the failure table have fixed caps.
package auth
