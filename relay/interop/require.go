package interop

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every
// interop program must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of each program, skipping the test (or failing
// it under CI=true) when one is missing.
func Require(t testing.TB, programs ...string) map[string]string {
	t.Helper()
	paths := make(map[string]string, len(programs))
	for _, p := range programs {
		path, err := lookPath(p)
		if err != nil {
			missing(t, p+" is not installed (Debian package "+debianPackage(p)+")")
		}
		paths[p] = path
	}
	return paths
}

// lookPath also searches the sbin directories, where Debian puts postfix
// and dnsmasq but which are not on an ordinary user's PATH.
func lookPath(p string) (string, error) {
	if path, err := exec.LookPath(p); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		path := dir + "/" + p
		if st, err := os.Stat(path); err == nil && st.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return exec.LookPath(p)
}

func debianPackage(p string) string {
	switch p {
	case "dnsmasq":
		return "dnsmasq-base"
	case "postfix", "postconf", "sendmail", "postqueue", "smtp-source", "smtp-sink":
		return "postfix"
	}
	return p
}

// missing skips, or fails under CI, with the reason.
func missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s; CI=true requires it (.ci/run installs it)", why)
	}
	t.Skipf("skipping: %s; install it or run .ci/run", why)
}

// RequireDKIMPy returns the Python interpreter that has dkimpy (Debian
// python3-dkim) importable. Debian's package installs into the system
// Python, which may not be the first python3 on PATH.
func RequireDKIMPy(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if err := exec.Command(py, "-c", "import dkim").Run(); err == nil {
			return py
		}
	}
	missing(t, "dkimpy is not installed (Debian package python3-dkim)")
	return ""
}

// RequireOpenSSLDev skips (or fails under CI) unless smarthost can be built
// with -tags openssl: a C compiler for cgo and OpenSSL's headers and
// libcrypto (Debian libssl-dev).
func RequireOpenSSLDev(t testing.TB) {
	t.Helper()
	Require(t, "gcc")
	if _, err := os.Stat("/usr/include/openssl/evp.h"); err != nil {
		missing(t, "OpenSSL's headers are not installed (Debian package libssl-dev)")
	}
}
