//go:build openssl && cgo

package dkim

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// With the openssl tag, Load hands RSA keys to libcrypto, and its
// signatures are byte for byte those of crypto/rsa: PKCS #1 v1.5 is
// deterministic, so any difference would be a wrong signature.
func TestOpenSSLSignsAsCryptoRSA(t *testing.T) {
	if !strings.HasPrefix(RSABackend(), "OpenSSL") {
		t.Fatalf("RSABackend() = %q, want OpenSSL's version", RSABackend())
	}
	goKey, err := ReadPrivateKey(rsaKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tab := newTable(t, "relaxed/simple", keySpec{selector: "s", file: rsaKeyFile})
	signer := tab.Keys()[0].signer
	if _, ok := signer.(*opensslRSA); !ok {
		t.Fatalf("Load made a %T signer for an RSA key, want *opensslRSA", signer)
	}
	if !goKey.Public().(*rsa.PublicKey).Equal(signer.Public()) {
		t.Fatal("the OpenSSL signer's public key is not the file's")
	}
	for i := range 20 {
		digest := sha256.Sum256([]byte(fmt.Sprint("message ", i)))
		want, err := goKey.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		got, err := signer.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("digest %d: OpenSSL signed %x…, crypto/rsa %x…", i, got[:8], want[:8])
		}
	}
	if _, err := signer.Sign(nil, make([]byte, 20), crypto.SHA1); err == nil {
		t.Error("the OpenSSL signer signed a SHA-1 digest; DKIM's RSA is SHA-256 only (RFC 8301)")
	}
	digest := sha256.Sum256([]byte("pss"))
	if _, err := signer.Sign(nil, digest[:], &rsa.PSSOptions{Hash: crypto.SHA256}); err == nil {
		t.Error("the OpenSSL signer accepted PSS options but makes PKCS #1 v1.5 signatures")
	}
}
