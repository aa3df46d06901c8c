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

// Errors of [UsersFile] editing. They are for `smarthost user` only: the
// SMTP path never returns them, because telling a client that a user does
// not exist would let it probe for names.
var (
	// ErrUserExists means [UsersFile.Add] found the name already present.
	ErrUserExists = errors.New("auth: user already exists")
	// ErrUnknownUser means [UsersFile.SetPassword] or [UsersFile.Delete]
	// did not find the name.
	ErrUnknownUser = errors.New("auth: no such user")
)
