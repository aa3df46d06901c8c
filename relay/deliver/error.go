package deliver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"smarthost/queue"
	"smarthost/relay/route"
)

// Error is why an attempt failed for a recipient. It is what
// [queue.Result.Err] holds for every failed recipient.
//
// The queue decides between retry and bounce from Permanent alone: a 5xx
// reply, a null MX, a non-existent domain, an SMTPUTF8 message for a peer
// without SMTPUTF8 are permanent; everything else — 4xx replies, network
// and TLS failures, DNS trouble, and anything not understood — is
// temporary, so that no mail bounces because of a problem that may pass.
type Error struct {
	// Permanent is true when retrying cannot help.
	Permanent bool
	// Code is the remote reply code (550), or 0 when no reply was
	// received (connection failure, local check, DNS).
	Code int
	// Enhanced is the RFC 3463 status for the DSN, e.g. "5.1.1". Its class
	// always agrees with Permanent.
	Enhanced string
	// Command is the protocol step that failed: "connect", "TLS
	// handshake" (smtps), "greeting", "EHLO", "STARTTLS", "MAIL FROM",
	// "RCPT TO", "DATA", "end of data"; "route" for a failure before any
	// connection, "deliver" for a recovered panic.
	Command string
	// Line is the remote reply as received, on one line ("550 5.1.1 No
	// such user"); "" when there was none.
	Line string
	// Err is the underlying error: a *smtp.SMTPError for a reply, a
	// network, TLS or DNS error, or a description of a local check.
	Err error
}

// Error formats the failure with its step: "deliver: RCPT TO: 550 5.1.1
// No such user".
func (e *Error) Error() string {
	if e.Line != "" {
		return "deliver: " + e.Command + ": " + e.Line
	}
	return "deliver: " + e.Command + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// reply is the text for a DSN's Diagnostic-Code and the log: the remote
// reply, or else a description of the local failure.
func (e *Error) reply() string {
	if e.Line != "" {
		return e.Line
	}
	return e.Err.Error()
}

// temporary returns a temporary failure of cmd with the given RFC 3463
// code and no remote reply.
func temporary(cmd, enhanced string, err error) *Error {
	return &Error{Command: cmd, Enhanced: enhanced, Err: err}
}

// permanent returns a permanent failure of cmd with no remote reply.
func permanent(cmd, enhanced string, err error) *Error {
	return &Error{Permanent: true, Command: cmd, Enhanced: enhanced, Err: err}
}

// fromReply classifies the outcome of a command. A *smtp.SMTPError is a
// reply: 5xx is permanent, everything else temporary. Any other error
// means the connection failed while talking to mx (RFC 3463 X.4.2, bad
// connection).
func fromReply(cmd, mx string, err error) *Error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return temporary(cmd, "4.4.2", fmt.Errorf("lost connection with %s while sending %s: %w", mx, cmd, err))
	}
	e := &Error{Command: cmd, Code: se.Code, Err: err, Permanent: se.Code/100 == 5}
	class := 4
	if e.Permanent {
		class = 5
	}
	sent := se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode != smtp.NoEnhancedCode
	switch {
	case sent && se.EnhancedCode[0] == class:
		e.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	case se.Code/100 == 4 || se.Code/100 == 5:
		e.Enhanced = fmt.Sprintf("%d.0.0", class)
	default:
		// A reply of the wrong kind (250 where 354 was due): a protocol
		// error, RFC 3463 X.5.0, and not a reason to bounce.
		e.Enhanced = "4.5.0"
	}
	text := strings.ReplaceAll(se.Message, "\n", " ")
	if sent {
		e.Line = fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], text)
	} else {
		e.Line = fmt.Sprintf("%d %s", se.Code, text)
	}
	return e
}

// fromRoute converts a routing failure. route.Hosts returns only
// *route.Error; anything else counts as temporary.
func fromRoute(err error) *Error {
	var re *route.Error
	if errors.As(err, &re) {
		return &Error{Permanent: re.Permanent, Command: "route", Enhanced: re.Enhanced, Err: err}
	}
	return temporary("route", "4.4.3", err)
}

// attempt is what the results of one next-hop group share: where the
// attempt went and how.
type attempt struct {
	nextHop   string
	remoteMTA string // host name of the server that answered
	mx        string // name[ip]:port connected to
	tls       string
}

func (a attempt) failed(rcpt string, e *Error) queue.Result {
	return queue.Result{
		Recipient: rcpt,
		Err:       e,
		Permanent: e.Permanent,
		Reply:     e.reply(),
		Enhanced:  e.Enhanced,
		RemoteMTA: a.remoteMTA,
		NextHop:   a.nextHop,
		MX:        a.mx,
		TLS:       a.tls,
	}
}

func (a attempt) delivered(rcpt, reply string) queue.Result {
	return queue.Result{
		Recipient: rcpt,
		Reply:     reply,
		Enhanced:  enhancedOf(reply),
		RemoteMTA: a.remoteMTA,
		NextHop:   a.nextHop,
		MX:        a.mx,
		TLS:       a.tls,
	}
}

// enhancedOf picks "2.0.0" out of "250 2.0.0 Ok", or "".
func enhancedOf(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 || strings.Count(f[1], ".") != 2 || f[1][0] != line[0] {
		return ""
	}
	return f[1]
}
