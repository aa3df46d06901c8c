package mlog

// NoQueue is the queue_id of events that happen before a message has an ID.
const NoQueue = "NOQUEUE"

// Event messages (the slog "msg" of each line).
const (
	Received    = "received"     // a message was queued and answered 250
	Rejected    = "rejected"     // a command or message was refused
	Delivered   = "delivered"    // a recipient was accepted by the next hop
	Deferred    = "deferred"     // a recipient's attempt failed temporarily
	Bounced     = "bounced"      // a recipient failed permanently
	Expired     = "expired"      // a recipient reached max_lifetime
	DSNQueued   = "dsn_queued"   // a delivery status notification was queued
	Held        = "held"         // an administrator held a message
	Released    = "released"     // an administrator released a message
	Deleted     = "deleted"      // a message left the queue without delivery
	Removed     = "removed"      // a message left the queue: every recipient is done
	AuthFailed  = "auth_failed"  // a login failed; fail2ban matches this line
	AuthBanned  = "auth_banned"  // a client IP was banned after failures
	Connected   = "connected"    // a client connected (Debug)
	Panic       = "panic"        // a recovered panic, with its stack
	Recovered   = "recovered"    // the queue was loaded at start-up
	Signed      = "signed"       // a message was DKIM-signed
	TLSFallback = "tls_fallback" // a STARTTLS handshake failed and plain text was used
	Corrupt     = "corrupt"      // recovery set a damaged message aside in the spool's corrupt/
	SpoolError  = "spool_error"  // a queued message's state could not be written to disk
)

// Server life-cycle events (no queue ID: they are not about a message).
const (
	Listening        = "listening"          // a listener accepts connections
	UsersFileMissing = "users_file_missing" // nobody can log in
	Reloaded         = "reloaded"           // SIGHUP applied a new configuration
	ReloadRejected   = "reload_rejected"    // SIGHUP found problems; the old configuration stays
	NeedsRestart     = "reload_needs_restart"
	ConfigWarning    = "config_warning"
)

// Attribute keys.
const (
	QueueID     = "queue_id"
	From        = "from"         // envelope sender (MAIL FROM); "" is the null sender
	Rcpt        = "rcpt"         // one envelope recipient
	RcptCount   = "rcpt_count"   // number of envelope recipients
	Size        = "size"         // message size in bytes
	ClientIP    = "client_ip"    // the SMTP client's IP address
	User        = "user"         // the SASL user name
	TLS         = "tls"          // TLS version and cipher, or "none"
	DKIMDomain  = "dkim_domain"  // d= of the signatures we added
	Checks      = "checks"       // inbound SPF/DKIM/DMARC results, e.g. "spf=pass dkim=pass dmarc=pass"
	Stage       = "stage"        // connect, helo, auth, mail, rcpt, data
	Code        = "code"         // SMTP reply code, e.g. 550
	Enhanced    = "enhanced"     // enhanced status code, e.g. 5.7.1
	Reason      = "reason"       // why, for the log only (never sent to clients)
	NextHop     = "next_hop"     // Postfix-syntax next hop, e.g. smtp:[h]:10025
	MX          = "mx"           // the host:port actually connected to
	Reply       = "reply"        // the remote server's reply text
	Attempt     = "attempt"      // delivery attempt number, from 1
	NextAttempt = "next_attempt" // when the next attempt is due (RFC 3339)
	ConnID      = "conn_id"      // per-connection ID for Debug traces
	Listener    = "listener"     // the listener's name
	Mechanism   = "mechanism"    // SASL mechanism
	Error       = "error"        // an internal error
	Stack       = "stack"        // a panic's stack trace
	Count       = "count"        // a number of messages
	Delay       = "delay"        // time since arrival, in seconds
	DSNID       = "dsn_id"       // queue ID of the DSN a bounce produced
	BanUntil    = "ban_until"    // end of a ban (RFC 3339)
	Address     = "address"      // a listening address
	Role        = "role"         // a listener's role
	File        = "file"         // a file the event is about
	Key         = "key"          // a configuration key
	Problem     = "problem"      // a configuration problem, as smarthost check prints it
)
