package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"smarthost/config"
)

// Kind is the kind of key `smarthost dkim keygen -algo` makes.
type Kind string

const (
	// KindRSA2048 is a 2048-bit RSA key, for rsa-sha256: every verifier
	// knows it.
	KindRSA2048 Kind = "rsa-2048"
	// KindEd25519 is an Ed25519 key, for ed25519-sha256 (RFC 8463). Not
	// every verifier knows it yet, so sign with RSA beside it.
	KindEd25519 Kind = "ed25519"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindRSA2048 || k == KindEd25519 }

// GenerateKey makes a new private key of the given kind.
func GenerateKey(kind Kind) (crypto.Signer, error) {
	switch kind {
	case KindRSA2048:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate key: %w", err)
		}
		return k, nil
	case KindEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dkim: generate key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("dkim: unknown kind of key %q; use %s or %s", kind, KindRSA2048, KindEd25519)
}

// MarshalPrivateKey encodes a private key as PEM: an RSA key as PKCS#1
// ("RSA PRIVATE KEY"), which OpenDKIM and dkimpy read too, so the key can
// move between them; an Ed25519 key as PKCS#8 ("PRIVATE KEY"), the only PEM
// form it has.
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case ed25519.PrivateKey:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("dkim: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("dkim: %T is not an RSA or Ed25519 key", k)
}

// KeygenOptions says what [Keygen] makes and where.
type KeygenOptions struct {
	// Dir is the key directory; the files go in Dir/<domain>/.
	Dir string
	// Domain is the signing domain, d=.
	Domain string
	// Selector is the s= tag, e.g. "2026a". A new key needs a new
	// selector, so that mail signed with the old key still verifies while
	// it is in flight.
	Selector string
	// Kind is the kind of key; "" means [KindRSA2048].
	Kind Kind
}

// KeyFiles is what [Keygen] wrote.
type KeyFiles struct {
	// PrivateKey is Dir/<domain>/<selector>.private, PEM, mode 0600.
	PrivateKey string
	// RecordFile is Dir/<domain>/<selector>.txt, the DNS record as a zone
	// file line, as opendkim-genkey writes it.
	RecordFile string
	// Record is the DNS record to publish.
	Record Record
}

// Keygen makes a key and writes it as opendkim-genkey does:
// Dir/<domain>/<selector>.private (mode 0600, in a directory created with
// mode 0700) and Dir/<domain>/<selector>.txt. It never overwrites a private
// key: if the file exists it fails and changes nothing.
func Keygen(opts KeygenOptions) (KeyFiles, error) {
	domain := strings.ToLower(strings.TrimSuffix(opts.Domain, "."))
	if !config.ValidDomain(domain) {
		return KeyFiles{}, fmt.Errorf("dkim: %q is not a domain; write e.g. example.com", opts.Domain)
	}
	if !validSelector(opts.Selector) {
		return KeyFiles{}, fmt.Errorf("dkim: %q is not a selector; write e.g. 2026a (letters, digits, - and _, dot-separated)", opts.Selector)
	}
	if opts.Kind == "" {
		opts.Kind = KindRSA2048
	}
	key, err := GenerateKey(opts.Kind)
	if err != nil {
		return KeyFiles{}, err
	}
	pemBytes, err := MarshalPrivateKey(key)
	if err != nil {
		return KeyFiles{}, err
	}
	rec, err := NewRecord(key.Public())
	if err != nil {
		return KeyFiles{}, err
	}
	dir := filepath.Join(opts.Dir, domain)
	files := KeyFiles{
		PrivateKey: filepath.Join(dir, opts.Selector+".private"),
		RecordFile: filepath.Join(dir, opts.Selector+".txt"),
		Record:     rec,
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KeyFiles{}, fmt.Errorf("dkim: %w", err)
	}
	if err := writeNew(files.PrivateKey, pemBytes); err != nil {
		return KeyFiles{}, err
	}
	txt := rec.Zone(domain, opts.Selector) + " ; ----- DKIM key " + opts.Selector + " for " + domain + "\n"
	if err := os.WriteFile(files.RecordFile, []byte(txt), 0o644); err != nil {
		return KeyFiles{}, fmt.Errorf("dkim: %w", err)
	}
	return files, nil
}

// writeNew creates path with mode 0600 and writes data to it, failing if
// path exists. A partly written file is removed.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("dkim: %s already exists; keygen never overwrites a key: choose a new selector (rotating keys needs one anyway) or move the old key away", path)
	}
	if err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("dkim: write %s: %w", path, err)
	}
	return nil
}

// validSelector reports whether s is a selector: dot-separated labels of
// letters, digits, hyphen and underscore (RFC 6376 §3.1 with the
// underscore DNS allows). It keeps selectors usable as file names too.
func validSelector(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Instructions is what keygen and `dkim record` print: the record as one
// value for a web DNS panel and as a zone-file line.
func Instructions(domain, selector string, r Record) string {
	domain = strings.TrimSuffix(domain, ".")
	return fmt.Sprintf(`Publish this DNS TXT record:

  name:  %s
         (a panel that appends your zone name wants only the part before it)
  type:  TXT
  value: %s

As a zone-file line:

%s

Then check it with: smarthost dkim testkey
`, RecordName(domain, selector), r.String(), r.Zone(domain, selector))
}
