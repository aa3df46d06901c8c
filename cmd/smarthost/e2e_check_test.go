package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smarthost/relay/dkim"
)

// TestE2E_CheckReportsEveryProblemWithFileLineAndKey is issue 2's
// "smarthost check catches a broken config with a message that names the
// key": a file with seven mistakes gets seven lines, each
// "file:line: key: problem; fix", plus one for a warning, and exit status
// 1, with the count of errors (not warnings) on stderr.
func TestE2E_CheckReportsEveryProblemWithFileLineAndKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := `hostname = "mail.e2e.test"
state_dir = "` + filepath.Join(dir, "state") + `"
trusted_networks = ["10.0.0.0/33"]
relay_domains = ["bad domain"]

[tls]
self_signed = true

[[listener]]
name = "submissions"
address = "127.0.0.1:4650"
tls = "sometimes"
role = "submission"

[auth]
users_file = "` + filepath.Join(dir, "users") + `"
colour = "blue"

[dkim]
[[dkim.key]]
domain = "e2e.test"
selector = "s1"
private_key = "` + filepath.Join(dir, "missing.private") + `"

[transport]
"*" = "smtp:[127.0.0.1]:notaport"

[delivery]
retry = ["1m", "soon"]

[dns]
server = "127.0.0.1:9"
`
	path := filepath.Join(dir, "smarthost.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := smarthostCmd("check", "-config", path)

	want := []struct {
		line    string // the line of the file the problem is on
		key     string
		problem string // part of the message
		warning bool
	}{
		{`trusted_networks = ["10.0.0.0/33"]`, "trusted_networks[0]", `"10.0.0.0/33": not an IP address or CIDR network`, false},
		{`relay_domains = ["bad domain"]`, "relay_domains[0]", `"bad domain" is not a domain`, false},
		{`tls = "sometimes"`, "listener[0].tls", `unknown TLS mode "sometimes"`, false},
		{`colour = "blue"`, "auth.colour", "unknown key", false},
		{`private_key = "` + filepath.Join(dir, "missing.private") + `"`, "dkim.key[0].private_key", "missing.private does not exist", false},
		{`"*" = "smtp:[127.0.0.1]:notaport"`, `transport."*"`, `bad port "notaport"`, false},
		{`retry = ["1m", "soon"]`, "delivery.retry[1]", `"soon": not a duration`, false},
		{`users_file = "` + filepath.Join(dir, "users") + `"`, "auth.users_file", "does not exist, so nobody can log in", true},
	}
	errors := 0
	for _, w := range want {
		if !w.warning {
			errors++
		}
	}
	if code != 1 {
		t.Errorf("smarthost check = exit %d, want 1", code)
	}
	if wantErr := fmt.Sprintf("smarthost check: %d problem(s) in %s\n", errors, path); errOut != wantErr {
		t.Errorf("smarthost check stderr = %q, want %q", errOut, wantErr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("smarthost check printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for _, w := range want {
		prefix := fmt.Sprintf("smarthost.toml:%d: %s: ", lineOf(t, text, w.line), w.key)
		if w.warning {
			prefix = fmt.Sprintf("smarthost.toml:%d: warning: %s: ", lineOf(t, text, w.line), w.key)
		}
		if !hasLine(lines, prefix, w.problem) {
			t.Errorf("smarthost check output lacks %q…%q:\n%s", prefix, w.problem, out)
		}
	}
}

// TestE2E_CheckNamesTheKeyOfBrokenFiles runs `smarthost check` on
// configurations that are valid as text but point at files that are not:
// the output names the key and the file. A good configuration
// (certificate files, users, RSA and Ed25519 keys) is OK with exit status
// 0 and nothing else said; with a self-signed certificate it is OK with a
// warning.
func TestE2E_CheckNamesTheKeyOfBrokenFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rsa := newKey(t, dir, signedDomain, "rsa", dkim.KindRSA2048)
	ed := newKey(t, dir, signedDomain, "ed", dkim.KindEd25519)
	notPEM := filepath.Join(dir, "not-a-key.private")
	if err := os.WriteFile(notPEM, []byte("this is not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert1, key1 := writeCertificate(t, dir, "one")
	_, key2 := writeCertificate(t, dir, "two")
	certFiles := func(cert, key string) func(c *e2eConfig, text string) string {
		return func(c *e2eConfig, text string) string {
			return strings.Replace(text, "self_signed = true", fmt.Sprintf("cert_file = %q\nkey_file = %q", cert, key), 1)
		}
	}

	good := func(t *testing.T) e2eConfig {
		return e2eConfig{
			Dir:       t.TempDir(),
			Listeners: []e2eListener{{Name: "submissions", TLS: "implicit", Role: "submission", Address: "127.0.0.1:4650"}},
			Users:     map[string]string{"alice": "correct horse battery staple"},
			Keys:      []e2eKey{rsa, ed},
		}
	}
	tests := []struct {
		name     string
		edit     func(c *e2eConfig, text string) string // changes the written file; nil keeps it
		wantCode int
		wantOut  []string
		wantOnly bool // wantOut is all of stdout
		// atLine and key, when set: a line of output starts with
		// "smarthost.toml:N: key: ", N being the number of line atLine.
		atLine, key string
	}{
		{"good configuration", certFiles(cert1, key1), 0, []string{"PATH: OK\n"}, true, "", ""},
		{"self-signed certificate", nil, 0, []string{"a self-signed certificate is for testing", "PATH: OK\n"}, false,
			"self_signed = true", "warning: tls.self_signed"},
		{"missing DKIM key file", func(c *e2eConfig, text string) string {
			return strings.Replace(text, ed.File, filepath.Join(dir, "gone.private"), 1)
		}, 1, []string{filepath.Join(dir, "gone.private") + " does not exist"}, false,
			fmt.Sprintf("private_key = %q", filepath.Join(dir, "gone.private")), "dkim.key[1].private_key"},
		{"DKIM key file without a key", func(c *e2eConfig, text string) string {
			return strings.Replace(text, ed.File, notPEM, 1)
		}, 1, []string{"ed._domainkey." + signedDomain, notPEM, "no PEM private key"}, false,
			fmt.Sprintf("private_key = %q", notPEM), "dkim.key[1].private_key"},
		{"certificate and key that do not match", certFiles(cert1, key2), 1,
			[]string{key2, "does not match the certificate in " + cert1}, false,
			fmt.Sprintf("cert_file = %q", cert1), "tls.cert_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good(t)
			path := c.write(t)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			text := string(src)
			if tt.edit != nil {
				text = tt.edit(&c, text)
				if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, out, errOut := smarthostCmd("check", "-config", path)
			if code != tt.wantCode {
				t.Errorf("smarthost check = exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				w = strings.ReplaceAll(w, "PATH", path)
				if !strings.Contains(out, w) {
					t.Errorf("smarthost check stdout lacks %q:\n%s", w, out)
				}
				if tt.wantOnly && out != w {
					t.Errorf("smarthost check stdout = %q, want only %q", out, w)
				}
			}
			if tt.atLine != "" {
				prefix := fmt.Sprintf("smarthost.toml:%d: %s: ", lineOf(t, text, tt.atLine), tt.key)
				if !hasLine(strings.Split(out, "\n"), prefix, "") {
					t.Errorf("smarthost check stdout has no line starting %q:\n%s", prefix, out)
				}
			}
		})
	}
}

// lineOf returns the 1-based number of the line of text that is line.
func lineOf(t *testing.T, text, line string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if l == line {
			return i + 1
		}
	}
	t.Fatalf("no line %q in the configuration", line)
	return 0
}

// hasLine reports whether a line starts with prefix and contains part.
func hasLine(lines []string, prefix, part string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, part) {
			return true
		}
	}
	return false
}

// writeCertificate writes a self-signed certificate for e2eHostname and
// its key as PEM files, as Let's Encrypt's fullchain.pem and privkey.pem.
func writeCertificate(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: e2eHostname},
		DNSNames:     []string{e2eHostname},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, name+"-fullchain.pem")
	keyFile = filepath.Join(dir, name+"-privkey.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
