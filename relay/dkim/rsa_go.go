//go:build !openssl || !cgo

package dkim

import "crypto"

// RSABackend names the implementation that makes RSA signatures: in this
// build, Go's crypto/rsa. Build with `-tags openssl` (and cgo) to sign with
// the system's OpenSSL libcrypto instead, about four times faster on
// current x86-64 (BENCHMARKS.md).
func RSABackend() string { return "Go crypto/rsa" }

// fastSigner returns s: Go's own implementations sign.
func fastSigner(s crypto.Signer) (crypto.Signer, error) { return s, nil }
