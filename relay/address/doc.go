// Package address parses and formats SMTP envelope addresses (RFC 5321
// §4.1.2) and recognises the tricks used to make a relay forward mail where
// it should not.
//
// It knows nothing of policy: it says what an address is (its parts, whether
// it carries sender-specified routing, whether it is an IP literal); the
// session decides what to do about it.
//
// Input is the path as go-smtp hands it over: brackets removed, a source
// route (@a,@b:) already dropped as RFC 5321 §3.6.1 allows, and a quoted
// local part already unquoted. [Address.String] quotes it again when needed.
package address
