package auth

import "errors"

// Sentinel errors. The session maps them to SMTP replies through
// relay/reply; auth itself knows nothing of SMTP.
var (
	// ErrInvalidCredentials means the user name or password is wrong. It
	// does not say which, so a client cannot probe for user names.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrBanned means the client IP has failed too often and is refused
	// without checking the password.
	ErrBanned = errors.New("auth: client banned after repeated failures")
	// ErrMalformed means the SASL exchange did not follow the mechanism's
	// syntax.
	ErrMalformed = errors.New("auth: malformed SASL response")
)
