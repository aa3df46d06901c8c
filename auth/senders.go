package auth

import "smarthost/config"

// Senders holds the sender permissions of the TOML table auth.senders: per
// user, the patterns the MAIL FROM and From: addresses must match. It is
// immutable and safe for concurrent use; a reload makes a new one.
//
// A user listed there may use only matching addresses; a user not listed
// may use any. This is the reverse of Postfix's smtpd_sender_login_maps
// with reject_sender_login_mismatch, which maps addresses to the logins
// that own them and rejects any address its login does not own. Postfix's
// way locks every user down but must list every address; ours lets a small
// site start with no table and restrict the one account that matters (the
// home server, a shared phone), which is what the DESIGN's optional
// auth.senders table promises. To lock everyone down, list every user.
type Senders struct {
	patterns map[string][]config.AddressPattern
}

// NewSenders returns the permissions for the auth.senders table, usually
// config.Auth.Senders. The map is copied.
func NewSenders(m map[string][]config.AddressPattern) *Senders {
	s := &Senders{patterns: make(map[string][]config.AddressPattern, len(m))}
	for user, ps := range m {
		s.patterns[user] = append([]config.AddressPattern(nil), ps...)
	}
	return s
}

// Restricted reports whether user has a list of allowed addresses.
func (s *Senders) Restricted(user string) bool {
	_, ok := s.patterns[user]
	return ok
}

// Allowed reports whether user may use addr (local@domain) as a From:
// address. Call it once for each address of a From: header. For a listed
// user, an address that matches none of the user's patterns, and an empty
// address, are refused; a user with an empty list may use no address at
// all. For MAIL FROM, use [Senders.AllowedMailFrom].
func (s *Senders) Allowed(user, addr string) bool {
	ps, ok := s.patterns[user]
	if !ok {
		return true
	}
	if addr == "" {
		return false
	}
	for _, p := range ps {
		if p.Match(addr) {
			return true
		}
	}
	return false
}

// AllowedMailFrom reports whether user may use addr as the envelope sender,
// "" being the null sender <>. It is [Senders.Allowed], except that the
// null sender is always allowed: it claims no address (nobody can be
// impersonated by it), a user's mail program may need it for delivery
// reports, and Postfix's reject_sender_login_mismatch lets it through too.
// The From: header of such a message is still checked with
// [Senders.Allowed].
func (s *Senders) AllowedMailFrom(user, addr string) bool {
	return addr == "" || s.Allowed(user, addr)
}
