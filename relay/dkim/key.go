package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"smarthost/config"
)

// Algorithm is a DKIM signing algorithm, as written in the a= tag.
type Algorithm string

const (
	// RSASHA256 is rsa-sha256 (RFC 6376 §3.3.1), with keys of at least
	// [MinRSABits].
	RSASHA256 Algorithm = "rsa-sha256"
	// Ed25519SHA256 is ed25519-sha256 (RFC 8463 §3).
	Ed25519SHA256 Algorithm = "ed25519-sha256"
)

// keyType is the k= value of the algorithm's DNS record.
func (a Algorithm) keyType() string {
	k, _, _ := strings.Cut(string(a), "-")
	return k
}

// MinRSABits is the smallest RSA key smarthost signs with. RFC 8301 §3.2
// says signers SHOULD use at least 2048 bits; 1024-bit keys are factorable
// by well-funded attackers, and some receivers already ignore them.
const MinRSABits = 2048

// Key is one signing key from the configuration, with the From patterns it
// signs for. Its fields must not be changed; it is safe for concurrent use.
type Key struct {
	// Domain is the signing domain, the d= tag.
	Domain string
	// Selector is the s= tag.
	Selector string
	// File is the private key file it was read from.
	File string
	// Sign are the From: address patterns this key signs.
	Sign []config.AddressPattern

	signer crypto.Signer
}

// Algorithm reports the key's signing algorithm.
func (k *Key) Algorithm() Algorithm { return algorithmOf(k.signer.Public()) }

// Public returns the public key: *rsa.PublicKey or ed25519.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Record returns the DNS TXT record that publishes the key.
func (k *Key) Record() Record {
	r, _ := NewRecord(k.Public()) // ParsePrivateKey admits only key types NewRecord knows
	return r
}

// Name returns the DNS name of the key's record,
// <selector>._domainkey.<domain>.
func (k *Key) Name() string { return RecordName(k.Domain, k.Selector) }

// matches reports whether the key signs mail from addr.
func (k *Key) matches(addr string) bool {
	for _, p := range k.Sign {
		if p.Match(addr) {
			return true
		}
	}
	return false
}

func algorithmOf(pub crypto.PublicKey) Algorithm {
	if _, ok := pub.(ed25519.PublicKey); ok {
		return Ed25519SHA256
	}
	return RSASHA256
}

// ReadPrivateKey reads a private key file; see [ParsePrivateKey]. Errors
// name the file and say how to fix it.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	s, err := readPrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	return s, nil
}

// readPrivateKey is [ReadPrivateKey] without the package prefix on errors.
func readPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("private key %s: no such file; create it with `smarthost dkim keygen` or fix the path", path)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w; make it readable by the user smarthost runs as", err)
	}
	s, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}

// ParsePrivateKey parses a DKIM private key: a PEM RSA key (PKCS#1 "RSA
// PRIVATE KEY" or PKCS#8 "PRIVATE KEY", at least [MinRSABits]) or a PEM
// PKCS#8 Ed25519 key. It also takes an Ed25519 key as the single base64 line
// of its 32-byte seed, the form dkimpy's dknewkey writes, so keys of a
// dkimpy-milter setup can be reused. The result is an *rsa.PrivateKey or an
// ed25519.PrivateKey.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil || strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if block == nil {
		if seed, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data))); err == nil && len(seed) == ed25519.SeedSize {
			return ed25519.NewKeyFromSeed(seed), nil
		}
		return nil, errors.New("no PEM private key in the file; write one with `smarthost dkim keygen` or `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errors.New("the key is encrypted; smarthost cannot ask for a passphrase, so decrypt it with `openssl pkey -in FILE -out FILE.new` and keep the file mode 0600")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a %q is not a DKIM key; use RSA (2048 bits or more) or Ed25519", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("bad %s: %w; write a new key with `smarthost dkim keygen`", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, fewer than the %d required (RFC 8301 §3.2); make a new key with `smarthost dkim keygen` and publish it under a new selector", bits, MinRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("a %T is not a DKIM key; use RSA (2048 bits or more) or Ed25519", key)
	}
}
