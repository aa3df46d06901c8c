package auth

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
)

// Mechanism names, as advertised in EHLO's AUTH line.
const (
	MechanismPlain = sasl.Plain // RFC 4616
	MechanismLogin = sasl.Login // draft-murchison-sasl-login
)

// CheckFunc checks a user name and password for a SASL server. It
// returns nil on success or an error the session maps to a reply
// ([ErrInvalidCredentials], [ErrBanned], ...). Both mechanisms call it
// exactly once per completed exchange and never for a malformed one, so it
// is the one place a session counts, logs and bans.
type CheckFunc func(user, password string) error

// NewPlainServer returns a server for one SASL PLAIN exchange (RFC 4616).
//
// The message is [authzid] NUL authcid NUL passwd. Without an initial
// response, or with an empty one ("AUTH PLAIN ="), which cannot be a PLAIN
// message, the server first sends an empty challenge (RFC 4954 §4: "334 ")
// and takes the client's answer as the message.
// A message without exactly two NULs, with an empty authcid or password, or
// with invalid UTF-8 in the identities fails with [ErrMalformed] and does
// not call authenticate. The authorization identity must be empty or equal
// to the authentication identity, because smarthost has no proxy users; a
// different one fails with [ErrInvalidCredentials] before the password is
// checked.
//
// A server is for one exchange on one connection and is not safe for
// concurrent use.
func NewPlainServer(authenticate CheckFunc) sasl.Server {
	return &plainServer{authenticate: authenticate}
}

type plainServer struct {
	authenticate CheckFunc
	asked        bool
	done         bool
}

// Next implements [sasl.Server].
func (s *plainServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if s.done {
		return nil, true, fmt.Errorf("%w: %w", ErrMalformed, sasl.ErrUnexpectedClientResponse)
	}
	if len(response) == 0 && !s.asked {
		s.asked = true
		return []byte{}, false, nil
	}
	s.done = true
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 {
		return nil, true, fmt.Errorf("%w: plain: want authzid NUL authcid NUL password", ErrMalformed)
	}
	authzid, authcid, password := parts[0], parts[1], parts[2]
	// RFC 4616 §2: authcid and passwd are 1*SAFE, identities are UTF-8.
	if len(authcid) == 0 || len(password) == 0 || !utf8.Valid(authzid) || !utf8.Valid(authcid) {
		return nil, true, fmt.Errorf("%w: plain: empty user or password, or identity not UTF-8", ErrMalformed)
	}
	if len(authzid) > 0 && !bytes.Equal(authzid, authcid) {
		return nil, true, fmt.Errorf("plain: authorization identity differs from user: %w", ErrInvalidCredentials)
	}
	return nil, true, s.authenticate(string(authcid), string(password))
}

// LOGIN challenges. The draft leaves their text open; these are what every
// client expects, and go-sasl's LOGIN client insists on "Password:".
var (
	loginUserChallenge     = []byte("Username:")
	loginPasswordChallenge = []byte("Password:")
)

// NewLoginServer returns a server for one SASL LOGIN exchange
// (draft-murchison-sasl-login-00; go-sasl has only the client side).
//
// The server asks "Username:" and then "Password:"; the SMTP layer
// base64-encodes the challenges. A client may send the user name as an
// initial response ("AUTH LOGIN dXNlcg=="), and the server then asks only
// for the password. An empty initial response ("AUTH LOGIN =") is taken as
// none. An empty user name or password fails with [ErrMalformed] and does
// not call authenticate. The password is passed on as it is: LOGIN
// predates any rule on its encoding.
//
// A server is for one exchange on one connection and is not safe for
// concurrent use.
func NewLoginServer(authenticate CheckFunc) sasl.Server {
	return &loginServer{authenticate: authenticate}
}

type loginState int

const (
	loginStart loginState = iota
	loginWantUser
	loginWantPassword
	loginDone
)

type loginServer struct {
	authenticate CheckFunc
	state        loginState
	user         string
}

// Next implements [sasl.Server].
func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case loginStart:
		if len(response) == 0 {
			s.state = loginWantUser
			return loginUserChallenge, false, nil
		}
		return s.takeUser(response)
	case loginWantUser:
		return s.takeUser(response)
	case loginWantPassword:
		s.state = loginDone
		if len(response) == 0 {
			return nil, true, fmt.Errorf("%w: login: empty password", ErrMalformed)
		}
		return nil, true, s.authenticate(s.user, string(response))
	}
	return nil, true, fmt.Errorf("%w: %w", ErrMalformed, sasl.ErrUnexpectedClientResponse)
}

func (s *loginServer) takeUser(response []byte) ([]byte, bool, error) {
	if len(response) == 0 || !utf8.Valid(response) {
		s.state = loginDone
		return nil, true, fmt.Errorf("%w: login: empty user name or not UTF-8", ErrMalformed)
	}
	s.user = string(response)
	s.state = loginWantPassword
	return loginPasswordChallenge, false, nil
}
