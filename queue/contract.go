package queue

import (
	"context"
	"io"
	"time"
)

// This file is the contract between the queue and its two neighbours: the
// SMTP session, which writes messages in (Create → Draft.Write →
// Draft.Commit), and the deliverer, which takes them out (Deliverer). The
// queue knows nothing of SMTP sessions or routing.

// ID is a queue ID: short, unique on this host, safe in file names, and
// present in every log line about the message.
type ID string

// Origin records where a message came from, for Received headers, logs and
// DSNs.
type Origin struct {
	Listener string `json:"listener,omitempty"` // listener name; "" for DSNs we generate
	Role     string `json:"role,omitempty"`     // "submission", "mx" or "local" (DSNs)
	ClientIP string `json:"client_ip,omitempty"`
	Helo     string `json:"helo,omitempty"`
	User     string `json:"user,omitempty"` // SASL user; "" when not authenticated
	TLS      string `json:"tls,omitempty"`  // e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256"; "" for plain text
}

// Envelope is what the session hands over with a message.
type Envelope struct {
	// From is the reverse-path in wire form (local part quoted as needed);
	// "" is the null sender, which never receives a DSN.
	From string
	// Recipients are forward-paths in wire form, in RCPT order, without
	// duplicates.
	Recipients []string
	// UTF8 is true when the client used SMTPUTF8 (RFC 6531).
	UTF8 bool
	// EightBit is true when the client declared BODY=8BITMIME.
	EightBit bool
	Origin   Origin
}

// Deliverer makes one delivery attempt for some of a message's recipients.
// relay/deliver implements it; the queue calls it from a bounded pool of
// workers, so it must be safe for concurrent use.
//
// Deliver returns exactly one Result per recipient in d.Recipients, in any
// order. It must not retry on its own beyond what one attempt means (trying
// each MX host in turn); the queue owns the retry schedule.
type Deliverer interface {
	Deliver(ctx context.Context, d *Delivery) []Result
}

// Delivery is one attempt's view of a queued message.
type Delivery struct {
	ID         ID
	From       string   // reverse-path; "" for the null sender
	Recipients []string // the recipients due in this attempt
	UTF8       bool
	EightBit   bool
	Size       int64 // bytes, including the prepended header
	Attempt    int   // 1 for the first attempt
	// Arrival is when the message was queued.
	Arrival time.Time
	// Open returns the whole message: the prepended header (Received,
	// DKIM-Signature) followed by the data file, read from disk as it is
	// sent. Each call returns a fresh reader; the caller closes it.
	Open func() (io.ReadCloser, error)
}

// Result is the outcome of one attempt for one recipient.
type Result struct {
	Recipient string
	// Err is nil when the next hop accepted the recipient and the message.
	Err error
	// Permanent says Err will not go away by retrying (a 5xx reply, a null
	// MX, a non-existent domain). The queue bounces permanent failures and
	// retries everything else; an unclassified Err is temporary.
	Permanent bool
	// Reply is the remote server's reply ("550 5.1.1 No such user"), or a
	// description of a local failure, for the DSN's Diagnostic-Code and
	// the log.
	Reply string
	// Enhanced is the RFC 3463 status for the DSN's Status field, e.g.
	// "5.1.1"; the queue derives one from Permanent when empty.
	Enhanced string
	// RemoteMTA is the host name of the server that answered, for the
	// DSN's Remote-MTA field; "" when none was reached.
	RemoteMTA string
	// NextHop is the route taken, in Postfix syntax, for the log.
	NextHop string
	// MX is host:port of the server connected to, for the log.
	MX string
	// TLS is the TLS version used ("TLSv1.3"), or "" for plain text.
	TLS string
}
