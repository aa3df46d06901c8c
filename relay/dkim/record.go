package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Record is a DKIM public key record, the TXT record at
// <selector>._domainkey.<domain> (RFC 6376 §3.6.1).
type Record struct {
	// KeyType is the k= tag: "rsa" (the default when the tag is absent)
	// or "ed25519" (RFC 8463 §4.2).
	KeyType string
	// PublicKey is the p= tag, base64-decoded. Empty means the key has
	// been revoked.
	PublicKey []byte
	// Flags is the t= tag: "y" means the domain is testing DKIM and
	// verifiers should not treat failures differently from unsigned mail;
	// "s" forbids subdomains in i=.
	Flags []string
	// Hashes is the h= tag, the hash algorithms allowed; nil allows all.
	Hashes []string
	// Services is the s= tag; nil or "*" allows all, "email" is ours.
	Services []string
}

// RecordName returns the DNS name of a key's record:
// <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1).
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}

// NewRecord returns the record that publishes pub, an *rsa.PublicKey or an
// ed25519.PublicKey. An RSA key is published as a SubjectPublicKeyInfo, as
// opendkim-genkey does and every verifier accepts (RFC 6376 erratum 3017);
// an Ed25519 key as its 32 bytes (RFC 8463 §4.2).
func NewRecord(pub crypto.PublicKey) (Record, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return Record{}, fmt.Errorf("dkim: %w", err)
		}
		return Record{KeyType: "rsa", PublicKey: der}, nil
	case ed25519.PublicKey:
		return Record{KeyType: "ed25519", PublicKey: []byte(k)}, nil
	}
	return Record{}, fmt.Errorf("dkim: %T is not an RSA or Ed25519 public key", pub)
}

// Testing reports whether the record carries the t=y flag.
func (r Record) Testing() bool { return slices.Contains(r.Flags, "y") }

// Revoked reports whether the record has an empty p= (RFC 6376 §3.6.1).
func (r Record) Revoked() bool { return len(r.PublicKey) == 0 }

// String returns the record's value as one unbroken string, the form web
// DNS panels want: "v=DKIM1; k=rsa; p=MIIB…".
func (r Record) String() string {
	return strings.Join(r.tags(), "")
}

// tags returns the record's tags, each with its "; " separator, p= last.
func (r Record) tags() []string {
	tags := []string{"v=DKIM1; ", "k=" + r.KeyType + "; "}
	if len(r.Hashes) > 0 {
		tags = append(tags, "h="+strings.Join(r.Hashes, ":")+"; ")
	}
	if len(r.Services) > 0 {
		tags = append(tags, "s="+strings.Join(r.Services, ":")+"; ")
	}
	if len(r.Flags) > 0 {
		tags = append(tags, "t="+strings.Join(r.Flags, ":")+"; ")
	}
	return append(tags, "p="+base64.StdEncoding.EncodeToString(r.PublicKey))
}

// maxTXTString is the longest character-string in a TXT record
// (RFC 1035 §3.3: one length octet).
const maxTXTString = 255

// Zone returns the record as one zone-file line (RFC 1035 §5.1), its value
// split into quoted strings of at most 255 octets, which the resolver joins
// again (RFC 6376 §3.6.2.2):
//
//	sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; " "p=MIIB…" "…" )
func (r Record) Zone(domain, selector string) string {
	var head string
	var strs []string
	tags := r.tags()
	for _, t := range tags[:len(tags)-1] {
		head += t
	}
	if head != "" {
		strs = append(strs, head) // short: the tags before p= together
	}
	p := tags[len(tags)-1]
	for len(p) > maxTXTString {
		strs = append(strs, p[:maxTXTString])
		p = p[maxTXTString:]
	}
	strs = append(strs, p)
	var b strings.Builder
	b.WriteString(RecordName(domain, selector) + ". IN TXT (")
	for _, s := range strs {
		b.WriteString(` "` + s + `"`)
	}
	b.WriteString(" )")
	return b.String()
}

// ParseRecord parses a key record as a resolver returns it (the strings of
// one TXT record already joined). It follows RFC 6376 §3.6.1 and the
// tag-list syntax of §3.2: tags separated by ";", white space (including
// folding) around tags and values ignored, tag names case-sensitive,
// unknown tags ignored, a duplicate tag makes the record invalid, v= if
// present must be "DKIM1" and come first, k= defaults to "rsa", p= is
// required and may be empty (revoked).
func ParseRecord(txt string) (Record, error) {
	tags, err := parseTagList(txt)
	if err != nil {
		return Record{}, err
	}
	if v, ok := tags.get("v"); ok && (v != "DKIM1" || tags[0].name != "v") {
		return Record{}, errors.New("dkim: record: v= must be DKIM1 and the first tag")
	}
	r := Record{KeyType: "rsa"}
	if k, ok := tags.get("k"); ok {
		r.KeyType = k
	}
	if r.KeyType != "rsa" && r.KeyType != "ed25519" {
		return Record{}, fmt.Errorf("dkim: record: unknown key type k=%s", r.KeyType)
	}
	p, ok := tags.get("p")
	if !ok {
		return Record{}, errors.New("dkim: record: no p= tag")
	}
	r.PublicKey, err = base64.StdEncoding.DecodeString(removeWSP(p))
	if err != nil {
		return Record{}, fmt.Errorf("dkim: record: p= is not base64: %w", err)
	}
	if h, ok := tags.get("h"); ok {
		r.Hashes = splitList(h)
	}
	if s, ok := tags.get("s"); ok {
		r.Services = splitList(s)
	}
	if t, ok := tags.get("t"); ok {
		r.Flags = splitList(t)
	}
	return r, nil
}

// Key decodes the record's key: *rsa.PublicKey (from a
// SubjectPublicKeyInfo or, as RFC 6376 §3.6.1 literally says, an
// RSAPublicKey) or ed25519.PublicKey.
func (r Record) Key() (crypto.PublicKey, error) {
	if r.Revoked() {
		return nil, errors.New("dkim: record: key revoked (empty p=)")
	}
	if r.KeyType == "ed25519" {
		if len(r.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("dkim: record: Ed25519 key of %d bytes, want %d", len(r.PublicKey), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(r.PublicKey), nil
	}
	if pub, err := x509.ParsePKIXPublicKey(r.PublicKey); err == nil {
		if rk, ok := pub.(*rsa.PublicKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("dkim: record: k=rsa holds a %T", pub)
	}
	rk, err := x509.ParsePKCS1PublicKey(r.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dkim: record: p= is not an RSA public key: %w", err)
	}
	return rk, nil
}

// tag is one tag=value of a tag list.
type tag struct{ name, value string }

type tagList []tag

func (l tagList) get(name string) (string, bool) {
	for _, t := range l {
		if t.name == name {
			return t.value, true
		}
	}
	return "", false
}

// parseTagList parses RFC 6376 §3.2 tag=value lists.
func parseTagList(s string) (tagList, error) {
	var l tagList
	for _, spec := range strings.Split(s, ";") {
		if trimWSP(spec) == "" {
			continue // a trailing ";" is allowed
		}
		name, value, ok := strings.Cut(spec, "=")
		name, value = trimWSP(name), trimWSP(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("dkim: record: %q is not tag=value", trimWSP(spec))
		}
		if _, dup := l.get(name); dup {
			return nil, fmt.Errorf("dkim: record: tag %s= given twice", name)
		}
		l = append(l, tag{name, value})
	}
	return l, nil
}

// trimWSP removes FWS (space, tab, CR, LF) from both ends.
func trimWSP(s string) string { return strings.Trim(s, " \t\r\n") }

// removeWSP removes all FWS, which base64 values may contain.
func removeWSP(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// splitList splits a colon-separated value list such as h=sha1:sha256.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ":") {
		if v = trimWSP(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
