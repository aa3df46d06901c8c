//go:build openssl && cgo

package dkim

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static EVP_PKEY *smarthost_load_key(const unsigned char *der, long len) {
	const unsigned char *p = der;
	return d2i_AutoPrivateKey(NULL, &p, len);
}

// smarthost_rsa_sign signs a SHA-256 digest with RSASSA-PKCS1-v1_5 and
// returns the signature's length, or -1.
static int smarthost_rsa_sign(EVP_PKEY *pkey, const unsigned char *digest, size_t dlen, unsigned char *sig, size_t siglen) {
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx == NULL) {
		return -1;
	}
	int ok = EVP_PKEY_sign_init(ctx) > 0
		&& EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0
		&& EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0
		&& EVP_PKEY_sign(ctx, sig, &siglen, digest, dlen) > 0;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error(); // this thread's error queue would keep growing
		return -1;
	}
	return (int)siglen;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"
)

// RSABackend names the implementation that makes RSA signatures. This
// build (tag openssl) uses the system's OpenSSL libcrypto: on x86-64 with
// AVX-512 IFMA its RSA-2048 signature costs about a quarter of Go's
// constant-time crypto/rsa (0.24 ms against 1.0 ms), the largest single
// cost of relaying a message (BENCHMARKS.md).
func RSABackend() string {
	return C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION))
}

// opensslRSA is an RSA private key held by libcrypto. Signatures are
// RSASSA-PKCS1-v1_5 over SHA-256, the only RSA scheme DKIM uses (RFC 8301),
// and deterministic: byte for byte what crypto/rsa makes with the same key.
type opensslRSA struct {
	pub  *rsa.PublicKey
	pkey *C.EVP_PKEY
}

// fastSigner returns a libcrypto copy of an RSA key, and any other key as
// it is.
func fastSigner(s crypto.Signer) (crypto.Signer, error) {
	k, ok := s.(*rsa.PrivateKey)
	if !ok {
		return s, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	pkey := C.smarthost_load_key((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	clear(der)
	if pkey == nil {
		return nil, errors.New("OpenSSL cannot load the RSA key")
	}
	o := &opensslRSA{pub: &k.PublicKey, pkey: pkey}
	runtime.AddCleanup(o, func(p *C.EVP_PKEY) { C.EVP_PKEY_free(p) }, pkey)
	return o, nil
}

func (o *opensslRSA) Public() crypto.PublicKey { return o.pub }

// Sign signs a SHA-256 digest; the random source is not used, as
// PKCS #1 v1.5 signatures are deterministic (OpenSSL blinds with its own).
func (o *opensslRSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, errors.New("dkim: the OpenSSL RSA signer makes PKCS #1 v1.5 signatures only, not PSS")
	}
	if opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("dkim: the OpenSSL RSA signer signs SHA-256 digests only, not %v", opts.HashFunc())
	}
	sig := make([]byte, o.pub.Size())
	n := C.smarthost_rsa_sign(o.pkey, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), C.size_t(len(sig)))
	runtime.KeepAlive(o)
	if n < 0 {
		return nil, errors.New("dkim: OpenSSL failed to make an RSA signature")
	}
	return sig[:n], nil
}
