package reply

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/emersion/go-smtp"

	"smarthost/auth"
	"smarthost/queue"
	"smarthost/relay/dkim"
	"smarthost/relay/inbound"
)

// Reply is one SMTP reply: the three-digit code, the enhanced status code
// and text. It is also an error, so session code can return it directly.
type Reply struct {
	Code     int
	Enhanced [3]int
	Text     string
	// Ref is where the code comes from, for readers of this file.
	Ref string
}

// Error formats the reply as it appears on the wire, without CRLF.
func (r Reply) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// SMTP converts the reply into the type go-smtp writes to the client.
func (r Reply) SMTP() *smtp.SMTPError {
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Text}
}

// Temporary reports whether the reply is a 4xx reply.
func (r Reply) Temporary() bool { return r.Code/100 == 4 }

// Because returns an error that is sent as r and keeps cause for the log.
func (r Reply) Because(cause error) error { return &Error{Reply: r, Cause: cause} }

// Error is a reply together with the internal reason for it. The client
// sees only Reply; Cause is for the log.
type Error struct {
	Reply Reply
	Cause error
}

func (e *Error) Error() string {
	if e.Cause == nil {
		return e.Reply.Error()
	}
	return e.Reply.Error() + ": " + e.Cause.Error()
}

func (e *Error) Unwrap() error { return e.Cause }

// Queued is the reply to a message that is safely in the queue.
func Queued(id string) Reply {
	return Reply{250, [3]int{2, 0, 0}, "Ok: queued as " + id, "RFC 5321 §4.2.2; Postfix wording"}
}

// Blocklisted is the reply to a client listed by a DNS blocklist; it names
// the list, as Postfix's reject_rbl_client does, so the sender can find out
// why.
func Blocklisted(zone string) Reply {
	return Reply{554, [3]int{5, 7, 1}, "Service unavailable; client host blocked using " + zone, "RFC 5782; Postfix reject_rbl_client wording"}
}

// Replies for commands before DATA.
var (
	AuthRequired        = Reply{530, [3]int{5, 7, 0}, "Authentication required", "RFC 4954 §6"}
	AuthFailed          = Reply{535, [3]int{5, 7, 8}, "Authentication credentials invalid", "RFC 4954 §6"}
	AuthBanned          = Reply{454, [3]int{4, 7, 0}, "Too many failed logins from your address; try again later", "RFC 4954 §6"}
	AuthUnavailable     = Reply{454, [3]int{4, 7, 0}, "Temporary authentication failure", "RFC 4954 §6"}
	AuthMechanism       = Reply{504, [3]int{5, 5, 4}, "Unrecognized authentication type", "RFC 4954 §6"}
	AuthNotOffered      = Reply{503, [3]int{5, 5, 1}, "Authentication not available on this port", "RFC 5321 §4.2.4"}
	AuthMalformed       = Reply{501, [3]int{5, 5, 2}, "Malformed authentication data", "RFC 4954 §4"}
	EncryptionRequired  = Reply{538, [3]int{5, 7, 11}, "Encryption required for requested authentication mechanism", "RFC 4954 §6"}
	RelayDenied         = Reply{554, [3]int{5, 7, 1}, "Relay access denied", "RFC 3463 5.7.1; Postfix wording"}
	SenderNotOwned      = Reply{553, [3]int{5, 7, 1}, "Sender address not owned by user", "RFC 3463 5.7.1; Postfix reject_sender_login_mismatch"}
	BadSenderSyntax     = Reply{501, [3]int{5, 1, 7}, "Bad sender address syntax", "RFC 3463 5.1.7"}
	BadRecipientSyntax  = Reply{501, [3]int{5, 1, 3}, "Bad recipient address syntax", "RFC 3463 5.1.3"}
	AddressTooLong      = Reply{501, [3]int{5, 5, 4}, "Address too long", "RFC 5321 §4.5.3.1"}
	UTF8Required        = Reply{553, [3]int{5, 6, 7}, "Non-ASCII address requires SMTPUTF8", "RFC 6531 §3.7.4.1"}
	BadHelo             = Reply{501, [3]int{5, 5, 2}, "Invalid HELO or EHLO argument", "RFC 5321 §4.1.1.1"}
	TooManyRecipients   = Reply{452, [3]int{4, 5, 3}, "Too many recipients", "RFC 5321 §4.5.3.1.10"}
	UnknownRecipient    = Reply{550, [3]int{5, 1, 1}, "Recipient address rejected: User unknown", "RFC 3463 5.1.1; Postfix relay_recipient_maps"}
	UnverifiedRecipient = Reply{450, [3]int{4, 1, 1}, "Recipient address rejected: verification failed temporarily; try again later", "RFC 3463 4.1.1; Postfix reject_unverified_recipient"}
	Greylisted          = Reply{450, [3]int{4, 2, 0}, "Greylisted; please try again later", "RFC 6647; postgrey's reply"}
	TooManyConnections  = Reply{421, [3]int{4, 7, 0}, "Too many connections from your address; try again later", "RFC 5321 §3.8"}
	Banned              = Reply{421, [3]int{4, 7, 0}, "Too many failed logins from your address; try again later", "RFC 5321 §3.8"}
	ShuttingDown        = Reply{421, [3]int{4, 3, 2}, "Service shutting down", "RFC 3463 4.3.2"}
	Timeout             = Reply{421, [3]int{4, 4, 2}, "Timeout exceeded; closing connection", "RFC 3463 4.4.2"}
)

// Replies at the end of DATA.
var (
	MessageTooBig       = Reply{552, [3]int{5, 3, 4}, "Message size exceeds fixed limit", "RFC 5321 §4.5.3.1.10; Postfix wording"}
	HeaderTooBig        = Reply{552, [3]int{5, 3, 4}, "Message header exceeds fixed limit", "RFC 3463 5.3.4"}
	LineTooLong         = Reply{500, [3]int{5, 5, 2}, "Line too long", "RFC 5321 §4.5.3.1.6"}
	BareCR              = Reply{550, [3]int{5, 5, 2}, "Bare CR received; lines must end with CRLF", "RFC 5321 §2.3.8; Postfix smtpd_forbid_bare_newline"}
	NULCharacter        = Reply{550, [3]int{5, 6, 0}, "Message contains NUL characters", "RFC 6152 §3"}
	NoFromHeader        = Reply{550, [3]int{5, 7, 1}, "Message has no From: header; exactly one is required", "RFC 5322 §3.6; RFC 7489 §6.6.1"}
	MultipleFromHeaders = Reply{550, [3]int{5, 7, 1}, "Message has several From: headers; exactly one is required", "RFC 5322 §3.6; RFC 7489 §6.6.1"}
	BadFromHeader       = Reply{550, [3]int{5, 7, 1}, "From: header must hold exactly one valid address", "RFC 5322 §3.6.2; RFC 7489 §6.6.1"}
	FromNotOwned        = Reply{553, [3]int{5, 7, 1}, "From: address not owned by user", "RFC 3463 5.7.1"}
	StorageFailed       = Reply{452, [3]int{4, 3, 1}, "Insufficient system storage", "RFC 3463 4.3.1"}
	TooManyHops         = Reply{554, [3]int{5, 4, 6}, "Too many hops; mail loop", "RFC 5321 §6.3; RFC 3463 5.4.6; Postfix hopcount_limit"}
	LocalError          = Reply{451, [3]int{4, 3, 0}, "Local error in processing; try again later", "RFC 3463 4.3.0"}
	DNSTempFail         = Reply{451, [3]int{4, 4, 3}, "Temporary DNS failure; try again later", "RFC 3463 4.4.3"}
	SenderNotAuthorized = Reply{550, [3]int{5, 7, 23}, "Sender is not authorized by its domain to send this message", "RFC 7208 §8.4; RFC 7372 §3.2"}
	PolicyRejected      = Reply{550, [3]int{5, 7, 1}, "Message rejected by the sender domain's policy", "RFC 7489 §6.6.3; RFC 3463 5.7.1"}
)

// All lists every fixed reply, for the table test and documentation.
var All = []Reply{
	AuthRequired, AuthFailed, AuthBanned, AuthUnavailable, AuthMechanism, AuthNotOffered,
	AuthMalformed, EncryptionRequired, RelayDenied, SenderNotOwned, BadSenderSyntax, BadRecipientSyntax,
	AddressTooLong, UTF8Required, BadHelo, TooManyRecipients, TooManyConnections, Banned,
	ShuttingDown, Timeout, MessageTooBig, HeaderTooBig, LineTooLong, BareCR, NULCharacter,
	NoFromHeader, MultipleFromHeaders, BadFromHeader, FromNotOwned, StorageFailed, TooManyHops,
	LocalError, DNSTempFail, SenderNotAuthorized, PolicyRejected, UnknownRecipient,
	UnverifiedRecipient, Greylisted, Queued("ID"), Blocklisted("bl.example"),
}

// FromError maps any error to the reply go-smtp should send. nil maps to
// nil. A [Reply] or [*Error] anywhere in the chain is sent as is; known
// errors of lower packages and of go-smtp get their replies; everything else
// is a temporary local error, so a client never bounces mail because of a
// fault of ours.
func FromError(err error) *smtp.SMTPError {
	if err == nil {
		return nil
	}
	return Classify(err).SMTP()
}

// Classify is [FromError] returning the [Reply], for logging.
func Classify(err error) Reply {
	var re *Error
	if errors.As(err, &re) {
		return re.Reply
	}
	var r Reply
	if errors.As(err, &r) {
		return r
	}
	switch {
	case errors.Is(err, queue.ErrStorage):
		return StorageFailed
	case errors.Is(err, auth.ErrInvalidCredentials):
		return AuthFailed
	case errors.Is(err, auth.ErrBanned):
		return AuthBanned
	case errors.Is(err, auth.ErrMalformed):
		return AuthMalformed
	case errors.Is(err, dkim.ErrNoFrom):
		return NoFromHeader
	case errors.Is(err, dkim.ErrMultipleFrom):
		return MultipleFromHeaders
	case errors.Is(err, dkim.ErrBadFrom):
		return BadFromHeader
	case errors.Is(err, dkim.ErrHeaderTooBig):
		return HeaderTooBig
	case errors.Is(err, inbound.ErrSPFFail):
		return SenderNotAuthorized
	case errors.Is(err, inbound.ErrDMARCReject):
		return PolicyRejected
	case errors.Is(err, inbound.ErrTempFail):
		return DNSTempFail
	case errors.Is(err, smtp.ErrDataTooLarge):
		return MessageTooBig
	case errors.Is(err, smtp.ErrTooLongLine):
		return LineTooLong
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return Timeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Timeout
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
		return Reply{se.Code, [3]int(se.EnhancedCode), se.Message, "go-smtp"}
	}
	return LocalError
}

// WireText is the reply as a client sees it, for tests and logs.
func WireText(e *smtp.SMTPError) string {
	return strings.TrimSpace(fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message))
}
