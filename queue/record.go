package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RecipientState is where one recipient of a queued message stands.
type RecipientState string

// The recipient states. Pending and deferred recipients are due for
// delivery; delivered and failed ones are done.
const (
	StatePending   RecipientState = "pending"   // not yet attempted
	StateDelivered RecipientState = "delivered" // accepted by the next hop
	StateDeferred  RecipientState = "deferred"  // failed temporarily; retried on the schedule
	StateFailed    RecipientState = "failed"    // failed permanently or expired; bounced
)

// Valid reports whether s is one of the defined states.
func (s RecipientState) Valid() bool {
	switch s {
	case StatePending, StateDelivered, StateDeferred, StateFailed:
		return true
	}
	return false
}

// Done reports whether a recipient in state s needs no further delivery.
func (s RecipientState) Done() bool { return s == StateDelivered || s == StateFailed }

// Recipient is one envelope recipient and its delivery state.
type Recipient struct {
	Address string         `json:"address"` // forward-path in wire form
	State   RecipientState `json:"state"`
	// Attempts counts the delivery attempts that included this recipient.
	Attempts int `json:"attempts,omitempty"`
	// Reply is the last reply or local failure, as Result.Reply.
	Reply string `json:"reply,omitempty"`
	// Status is the RFC 3463 status of the last outcome, e.g. "4.4.1".
	Status string `json:"status,omitempty"`
	// RemoteMTA is the host that gave Reply; "" when none was reached.
	RemoteMTA string `json:"remote_mta,omitempty"`
	// Expired marks a failed recipient that reached max_lifetime.
	Expired bool `json:"expired,omitempty"`
	// Notified marks a failed recipient whose DSN is queued (DSNID), or for
	// whom none is due (null sender). A failed recipient that is not yet
	// notified keeps its message in the queue until the DSN is queued.
	Notified bool `json:"notified,omitempty"`
	DSNID    ID   `json:"dsn_id,omitempty"`
	// Updated is when the state last changed.
	Updated time.Time `json:"updated,omitzero"`
}

// due reports whether the recipient takes part in the next attempt.
func (r *Recipient) due() bool { return r.State == StatePending || r.State == StateDeferred }

// needsDSN reports whether the recipient failed and no DSN is queued yet.
func (r *Recipient) needsDSN() bool { return r.State == StateFailed && !r.Notified }

// Attempt is one entry of a message's delivery history: what one attempt
// did for a group of its recipients that shared an outcome.
type Attempt struct {
	Time       time.Time      `json:"time"`
	Number     int            `json:"attempt"` // 1 for the first attempt
	Recipients []string       `json:"recipients"`
	Outcome    RecipientState `json:"outcome"` // delivered, deferred or failed
	NextHop    string         `json:"next_hop,omitempty"`
	MX         string         `json:"mx,omitempty"`
	TLS        string         `json:"tls,omitempty"`
	Reply      string         `json:"reply,omitempty"`
}

// maxHistory bounds the history kept per message, oldest dropped first.
const maxHistory = 10

// recordVersion is the envelope record format written by this code.
// Records with a higher version are refused rather than misread.
const recordVersion = 1

// record is the envelope record: everything about a queued message except
// its data. It is the JSON content of the ID.env file, whose rename is the
// commit point of a message; in memory it is what the queue keeps per
// message (bodies stay on disk).
type record struct {
	Version    int         `json:"version"`
	ID         ID          `json:"id"`
	From       string      `json:"from"`
	Recipients []Recipient `json:"recipients"`
	UTF8       bool        `json:"utf8,omitempty"`
	EightBit   bool        `json:"eight_bit,omitempty"`
	Origin     Origin      `json:"origin"`
	Arrival    time.Time   `json:"arrival"`
	// NextAttempt is when the message is next due; the zero time means at
	// once.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Attempts counts delivery attempts of the message as a whole; it
	// indexes the retry schedule.
	Attempts int  `json:"attempts"`
	Held     bool `json:"held,omitempty"`
	// Header is prepended to the data file at delivery (Received,
	// DKIM-Signature), CRLF-terminated lines.
	Header []byte `json:"header,omitempty"`
	// headerLen is len(Header), also while the record is cold.
	headerLen int64
	// cold means that Header and the History written so far are on disk
	// only: a message waiting for its retry leaves them in its record, as
	// Postfix leaves a deferred message in its queue file, so that a long
	// queue costs memory by its envelopes, not by its headers (Received
	// and DKIM-Signature, ~700 bytes) and attempt histories (up to 10
	// replies). While cold, Header is nil and History holds only the
	// entries added since, which spool.writeRecord merges with those on
	// disk. See makeCold and spool.readCold.
	cold bool
	// DataSize is the length of the data file, checked at recovery.
	DataSize int64     `json:"data_size"`
	History  []Attempt `json:"history,omitempty"`
}

// size is the size of the message as delivered.
func (r *record) size() int64 { return r.headerLen + r.DataSize }

// makeCold lets the header and history go from memory (see record.cold).
// Only a record whose file on disk is up to date may be made cold.
func (r *record) makeCold() {
	r.Header, r.History, r.cold = nil, nil, true
}

// done reports whether no recipient needs delivery or a DSN.
func (r *record) done() bool {
	for i := range r.Recipients {
		if !r.Recipients[i].State.Done() || r.Recipients[i].needsDSN() {
			return false
		}
	}
	return true
}

// clone returns a deep copy that shares nothing mutable with r.
func (r *record) clone() *record {
	c := *r
	c.Recipients = append([]Recipient(nil), r.Recipients...)
	c.History = make([]Attempt, len(r.History))
	for i, a := range r.History {
		a.Recipients = append([]string(nil), a.Recipients...)
		c.History[i] = a
	}
	if len(r.History) == 0 {
		c.History = nil
	}
	return &c
}

// addHistory appends entries, keeping the newest maxHistory.
func (r *record) addHistory(entries ...Attempt) {
	r.History = appendHistory(r.History, entries...)
}

// appendHistory appends entries to h, keeping the newest maxHistory.
func appendHistory(h []Attempt, entries ...Attempt) []Attempt {
	h = append(h, entries...)
	if n := len(h) - maxHistory; n > 0 {
		h = append([]Attempt(nil), h[n:]...)
	}
	return h
}

// encode returns the record's file content.
func (r *record) encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("queue: encode record %s: %w", r.ID, err)
	}
	return append(b, '\n'), nil
}

// decodeRecord parses and checks an envelope record. A record that does
// not satisfy the invariants the scheduler relies on is an error, so a
// damaged file is set aside at recovery instead of crashing the queue.
func decodeRecord(b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("queue: decode record: %w", err)
	}
	r.headerLen = int64(len(r.Header))
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeColdRecord is decodeRecord for recovery: it returns the record
// cold (see record.cold) and decodes neither the header, of which it only
// counts the bytes, nor the history. That halves the garbage start-up
// makes per message (the header's base64 is half a record's bytes), which
// matters when 100,000 envelopes must load under the unit's GOMEMLIMIT.
func decodeColdRecord(b []byte) (*record, error) {
	var r struct {
		record
		Header  base64Length   `json:"header,omitempty"`
		History skippedHistory `json:"history,omitempty"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("queue: decode record: %w", err)
	}
	r.headerLen, r.cold = int64(r.Header), true
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r.record, nil
}

// base64Length decodes a JSON base64 string ([]byte's encoding) into the
// length of its bytes, without decoding them; an invalid string is an
// error, as it is for []byte.
type base64Length int64

func (n *base64Length) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = 0
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' || bytes.IndexByte(b, '\\') >= 0 {
		// Not a plain string (encoding/json writes base64 unescaped):
		// decode it the slow way, which also reports what is wrong.
		var h []byte
		if err := json.Unmarshal(b, &h); err != nil {
			return err
		}
		*n = base64Length(len(h))
		return nil
	}
	s := b[1 : len(b)-1]
	pad := len(s) - len(bytes.TrimRight(s, "="))
	if len(s)%4 != 0 || pad > 2 || bytes.IndexFunc(s[:len(s)-pad], notBase64) >= 0 {
		return errors.New("header: invalid base64")
	}
	*n = base64Length(len(s)/4*3 - pad)
	return nil
}

func notBase64(c rune) bool {
	return !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/')
}

// skippedHistory takes a history as []Attempt does, refusing what that
// refuses (a record decodeRecord rejects must be set aside at recovery,
// not fail at every attempt), but keeps none of its strings.
type skippedHistory []struct {
	Time       time.Time       `json:"time"`
	Number     int             `json:"attempt"`
	Recipients []skippedString `json:"recipients"`
	Outcome    skippedString   `json:"outcome"`
	NextHop    skippedString   `json:"next_hop,omitempty"`
	MX         skippedString   `json:"mx,omitempty"`
	TLS        skippedString   `json:"tls,omitempty"`
	Reply      skippedString   `json:"reply,omitempty"`
}

// skippedString takes what a string takes (a JSON string or null) and
// keeps nothing.
type skippedString struct{}

func (*skippedString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' || string(b) == "null" {
		return nil
	}
	return fmt.Errorf("history: %.20s is not a string", b)
}

// check reports a record that breaks the invariants the scheduler relies
// on.
func (r *record) check() error {
	switch {
	case r.Version < 1 || r.Version > recordVersion:
		return fmt.Errorf("queue: decode record: unsupported version %d (this build reads %d)", r.Version, recordVersion)
	case !r.ID.Valid():
		return fmt.Errorf("queue: decode record: invalid queue ID %q", r.ID)
	case len(r.Recipients) == 0:
		return fmt.Errorf("queue: decode record %s: no recipients", r.ID)
	case r.DataSize < 0 || r.Attempts < 0:
		return fmt.Errorf("queue: decode record %s: negative size or attempt count", r.ID)
	}
	for i := range r.Recipients {
		if !r.Recipients[i].State.Valid() {
			return fmt.Errorf("queue: decode record %s: recipient %d: invalid state %q", r.ID, i, r.Recipients[i].State)
		}
	}
	return nil
}
