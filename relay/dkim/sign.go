package dkim

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// signedHeaderNames are the header fields we sign, in h= order, each as
// many times as it occurs. It is RFC 4871 §5.5's list (RFC 6376 §5.4.1
// shortened it, but every field here is one a forger would like to change),
// plus Content-Disposition, and List-Unsubscribe-Post, which RFC 8058 §4
// requires to be signed together with List-Unsubscribe.
//
// Not signed: Received, Return-Path and other trace fields, which relays
// add and change (RFC 6376 §5.4.1), and existing DKIM-Signature fields.
const signedHeaderNames = `From Reply-To Subject Date To Cc Sender Message-ID
	In-Reply-To References MIME-Version Content-Type Content-Transfer-Encoding
	Content-Disposition Content-ID Content-Description
	Resent-Date Resent-From Resent-Sender Resent-To Resent-Cc Resent-Message-ID
	List-Id List-Help List-Unsubscribe List-Unsubscribe-Post List-Subscribe
	List-Post List-Owner List-Archive`

// oversigned reports whether h= lists the field once more than it occurs.
//
// A verifier hashes the bottom-most instances of each listed field
// (RFC 6376 §5.4.2), so a field listed once more than it occurs cannot be
// added without breaking the signature; RFC 6376 §8.15 describes the attack
// this stops: a second From: or Subject: added above the signed one, which
// many MUAs show instead. That holds when the field is absent too: listed
// once, an absent To: or Cc: (legal, RFC 5322 §3.6.3, for Bcc-only mail)
// stays absent, so a signed message cannot be made to look addressed to
// someone it never was. Reply-To is included because adding one to a
// replayed signed message redirects the answers. The cost is that an MTA
// adding these fields after us breaks the signature; none should, and
// Postfix's "To: undisclosed-recipients:;" is added (if at all) before
// mail reaches us. rspamd oversigns the same five by default.
func oversigned(name string) bool {
	switch name {
	case "from", "reply-to", "subject", "to", "cc":
		return true
	}
	return false
}

// maxLineLength is the longest line we write: RFC 5322 §2.1.1's SHOULD,
// CRLF excluded.
const maxLineLength = 78

// Signer signs one message with the keys [Table.Signer] chose. Write the
// body (everything after the header section given to [Table.Signer]) to it,
// in chunks of any size, then call [Signer.Finish] once. The body is hashed
// as it is written; nothing of it is kept. A Signer is not safe for
// concurrent use.
type Signer struct {
	keys        []*Key
	time        time.Time
	headerCanon Canonicalization
	bodyCanon   Canonicalization
	names       []string // the h= list
	headerData  []byte   // the header fields h= names, canonicalized, in h= order
	bodyHash    hash.Hash
	body        bodyCanonicalizer
	done        bool
}

// Signatures is what [Signer.Finish] returns.
type Signatures struct {
	// Header holds one DKIM-Signature header field per key, each folded
	// into lines of at most 78 characters and ending in CRLF. Prepend it
	// to the message exactly as it was given (header section and body).
	Header []byte
	// Domain is the signing domain, d=, for the log.
	Domain string
	// Selectors are the keys' selectors, in the order of their fields.
	Selectors []string
}

// errFinished is returned when a Signer is used after Finish.
var errFinished = errors.New("dkim: signer used after Finish")

// Signer starts signing a message whose From: address is fromAddr (from
// [ParseFrom]) and whose header section is header (from [ReadHeader]; it
// must not include the body). It returns nil and no error when no key signs
// for fromAddr: the message goes out unsigned. It returns [ErrNoFrom] when
// the header has no From: field, which must be signed. Signer does not keep
// header.
func (t *Table) Signer(header []byte, fromAddr string) (*Signer, error) {
	keys := t.choose(fromAddr)
	if len(keys) == 0 {
		return nil, nil
	}
	s := &Signer{
		keys:        keys,
		time:        t.now(),
		headerCanon: t.headerCanon,
		bodyCanon:   t.bodyCanon,
		bodyHash:    sha256.New(),
	}
	if err := s.selectHeaders(splitFields(header), t.signed); err != nil {
		return nil, err
	}
	s.body = newBodyCanonicalizer(s.bodyCanon, s.bodyHash)
	return s, nil
}

// selectHeaders builds the h= list and canonicalizes the fields it names.
// For a name listed n times the verifier takes the n bottom-most instances,
// bottom first (RFC 6376 §5.4.2); listings beyond the instances present
// stand for "no such field" and add nothing to the hash.
func (s *Signer) selectHeaders(fields []field, signed []string) error {
	lower := make([]string, len(fields))
	count := make(map[string]int, len(fields))
	for i, f := range fields {
		lower[i] = strings.ToLower(f.name)
		count[lower[i]]++
	}
	if count["from"] == 0 {
		return ErrNoFrom
	}
	for _, name := range signed {
		n := count[name]
		if oversigned(name) {
			n++
		}
		i := len(fields)
		for ; n > 0; n-- {
			s.names = append(s.names, name)
			// The next instance up from the bottom, if any is left.
			for i--; i >= 0 && lower[i] != name; i-- {
			}
			switch {
			case i < 0:
				// An oversigned listing: nothing to hash.
			case s.headerCanon == Relaxed:
				s.headerData = appendRelaxedHeader(s.headerData, fields[i])
			default:
				s.headerData = appendSimpleHeader(s.headerData, fields[i])
			}
		}
	}
	return nil
}

// Write hashes a chunk of the body. It never fails before Finish.
func (s *Signer) Write(p []byte) (int, error) {
	if s.done {
		return 0, errFinished
	}
	return s.body.Write(p)
}

// Finish completes the body hash and signs with every chosen key. It must
// be called exactly once, after the whole body has been written. An error
// means a key failed to sign; the message must then not be sent unsigned.
func (s *Signer) Finish() (Signatures, error) {
	if s.done {
		return Signatures{}, errFinished
	}
	s.done = true
	s.body.Close()
	bh := base64.StdEncoding.EncodeToString(s.bodyHash.Sum(nil))
	out := Signatures{Domain: s.keys[0].Domain}
	for _, k := range s.keys {
		f, err := s.sign(k, bh)
		if err != nil {
			return Signatures{}, fmt.Errorf("dkim: sign with %s: %w", k.Name(), err)
		}
		out.Header = append(out.Header, f...)
		out.Selectors = append(out.Selectors, k.Selector)
	}
	return out, nil
}

// sign returns the DKIM-Signature field for k (RFC 6376 §3.5, §3.7).
// Tags come in OpenDKIM's order; there is never an l= tag.
func (s *Signer) sign(k *Key, bh string) ([]byte, error) {
	f := folder{b: []byte("DKIM-Signature:"), line: len("DKIM-Signature:")}
	f.add(" ", "v=1;")
	f.add(" ", "a="+string(k.Algorithm())+";")
	f.add(" ", "c="+string(s.headerCanon)+"/"+string(s.bodyCanon)+";")
	f.add(" ", "d="+k.Domain+";")
	f.add(" ", "s="+k.Selector+";")
	f.add(" ", "t="+strconv.FormatInt(s.time.Unix(), 10)+";")
	f.add(" ", "bh="+bh+";")
	for i, name := range s.names {
		// RFC 6376 §3.5 allows FWS after each colon of h=, so a long
		// list folds there.
		switch {
		case i == 0 && len(s.names) == 1:
			f.add(" ", "h="+name+";")
		case i == 0:
			f.add(" ", "h="+name+":")
		case i == len(s.names)-1:
			f.add("", name+";")
		default:
			f.add("", name+":")
		}
	}
	// b= goes on its own line, as OpenDKIM and dkimpy put it, so a
	// verifier's removal of its value leaves exactly what was hashed.
	f.b = append(f.b, "\r\n b="...)
	f.line = len(" b=")

	// The signature covers the signed fields and then this field with an
	// empty b= and no final CRLF (RFC 6376 §3.7).
	h := sha256.New()
	h.Write(s.headerData)
	if s.headerCanon == Relaxed {
		c := appendRelaxedHeader(nil, field{name: "DKIM-Signature", raw: f.b})
		h.Write(c[:len(c)-len(crlf)])
	} else {
		h.Write(f.b)
	}
	// RSA signs the digest with PKCS #1 v1.5 (RFC 6376 §3.3.1); Ed25519
	// signs the digest itself as its message, with PureEdDSA (RFC 8463 §3).
	var opts crypto.SignerOpts = crypto.SHA256
	if k.Algorithm() == Ed25519SHA256 {
		opts = crypto.Hash(0)
	}
	sig, err := k.signer.Sign(rand.Reader, h.Sum(nil), opts)
	if err != nil {
		return nil, err
	}
	b := base64.StdEncoding.EncodeToString(sig)
	for len(b) > 0 {
		room := maxLineLength - f.line
		if room <= 0 {
			f.b = append(f.b, "\r\n "...)
			f.line, room = 1, maxLineLength-1
		}
		room = min(room, len(b))
		f.b = append(f.b, b[:room]...)
		f.line += room
		b = b[room:]
	}
	return append(f.b, crlf...), nil
}

// folder writes a header field in lines of at most maxLineLength
// characters, folding before a token that would not fit.
type folder struct {
	b    []byte
	line int // length of the current line
}

// add appends tok after sep ("" or " "). When the line would get too long
// it folds instead: CRLF and a space, which is the FWS that sep or the
// syntax allows there.
func (f *folder) add(sep, tok string) {
	if f.line+len(sep)+len(tok) > maxLineLength {
		f.b = append(f.b, "\r\n "...)
		f.line = 1
	} else {
		f.b = append(f.b, sep...)
		f.line += len(sep)
	}
	f.b = append(f.b, tok...)
	f.line += len(tok)
}
