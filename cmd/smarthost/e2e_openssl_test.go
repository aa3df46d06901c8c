package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/relay/interop"
)

// TestE2E_OpenSSLBuild builds smarthost with -tags openssl, the build whose
// DKIM RSA signatures come from the system's libcrypto (BENCHMARKS.md),
// and checks it as a user would: version names OpenSSL, the demo passes
// every step (its signatures verified by go-msgauth against the published
// key), and relay/dkim's test that OpenSSL's signatures are crypto/rsa's,
// byte for byte, passes in that build.
func TestE2E_OpenSSLBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds smarthost with cgo")
	}
	interop.Require(t, "go")
	interop.RequireOpenSSLDev(t)
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "smarthost")
	goCmd(t, "build", "-tags", "openssl", "-o", bin, ".")

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "DKIM RSA signing: OpenSSL") {
		t.Fatalf("smarthost version (openssl build) = %v, %q; want it to name OpenSSL", err, out)
	}
	out, err = exec.Command(bin, "demo").CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "\nall steps passed\n") {
		t.Fatalf("smarthost demo (openssl build) = %v, output:\n%s", err, out)
	}
	goCmd(t, "test", "-count=1", "-tags", "openssl", "-run", "^TestOpenSSLSignsAsCryptoRSA$", "smarthost/relay/dkim")
}

// goCmd runs the go command (the toolchain on PATH, which runs this test).
func goCmd(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
