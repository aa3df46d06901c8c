package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/config"
)

// importFixtures is config/postfix's testdata: trees of the old server's
// files (etc/postfix/main.cf, ...) with the expected NAME.golden.
const importFixtures = "../../config/postfix/testdata"

func TestImport_RootWritesTheGoldenConfigToStdout(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd([]string{"import", "postfix", "-root", filepath.Join(importFixtures, "vps")}, "", false)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want, err := os.ReadFile(filepath.Join(importFixtures, "vps.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("stdout is not vps.golden:\n%s", out)
	}
	n := strings.Count(string(want), "# NOT TRANSLATED: ")
	if summary := fmt.Sprintf("wrote standard output; %d setting(s) not translated", n); n == 0 || !strings.Contains(errOut, summary) {
		t.Errorf("stderr = %q, want %q (and vps.golden to have NOT TRANSLATED comments)", errOut, summary)
	}
}

// writePostfixDir writes a main.cf and master.cf whose tables live in the
// same directory, named by absolute path as on a real server, and returns
// the directory.
func writePostfixDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"main.cf": "myhostname = mail.example.org\n" +
			"relay_domains = example.com\n" +
			"transport_maps = hash:" + filepath.Join(dir, "transport") + "\n" +
			"smtpd_tls_cert_file = " + filepath.Join(dir, "cert.pem") + "\n" +
			"smtpd_tls_key_file = " + filepath.Join(dir, "key.pem") + "\n" +
			"message_size_limit = 20971520\n",
		"master.cf": "smtp inet n - y - - smtpd\n" +
			"submissions inet n - y - - smtpd\n  -o smtpd_tls_wrappermode=yes\n  -o smtpd_sasl_auth_enable=yes\n" +
			"10025 inet n - y - - smtpd\n",
		"transport": "example.com smtp:[home.example.com]:10025\n",
		"cert.pem":  "",
		"key.pem":   "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImport_PostfixDirOutputPassesConfigParse(t *testing.T) {
	t.Parallel()
	dir := writePostfixDir(t)
	code, out, errOut := runCmd([]string{"import", "-opendkim", "", "postfix", "-postfix-dir", dir}, "", false)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		`hostname = "mail.example.org"`,
		`relay_domains = ["example.com"]`,
		`"example.com" = "smtp:[home.example.com]:10025"`,
		`max_message_size = "20MiB"`,
		`address = ":465"`,
		`tls = "implicit"`,
		"# NOT TRANSLATED: master.cf:5: 10025 inet n - y - - smtpd",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cfg, _, err := config.Parse(filepath.Join(dir, "smarthost.toml"), out)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			if !p.Warning {
				t.Errorf("config.Parse: %s", p)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 || cfg.Transport["example.com"].Port != 10025 {
		t.Errorf("listeners %+v, transport %+v; want smtp and submissions, example.com to port 10025", cfg.Listeners, cfg.Transport)
	}
}

func TestImport_OutputFileIsNotOverwrittenWithoutForce(t *testing.T) {
	t.Parallel()
	dir := writePostfixDir(t)
	out := filepath.Join(t.TempDir(), "smarthost.toml")
	args := []string{"import", "postfix", "-postfix-dir", dir, "-opendkim", "", "-o", out}

	code, stdout, errOut := runCmd(args, "", false)
	if code != 0 || stdout != "" || !strings.Contains(errOut, "wrote "+out) {
		t.Fatalf("first import: exit %d, stdout %q, stderr %q; want 0, nothing, the summary", code, stdout, errOut)
	}
	written, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(written), `hostname = "mail.example.org"`) {
		t.Fatalf("%s = %q, %v; want the imported configuration", out, written, err)
	}

	if err := os.WriteFile(out, []byte("# edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(args, "", false)
	if code != 1 || !strings.Contains(errOut, "exists; use -force") {
		t.Errorf("second import: exit %d, stderr %q; want 1 and a hint at -force", code, errOut)
	}
	if b, _ := os.ReadFile(out); string(b) != "# edited by hand\n" {
		t.Errorf("the existing file was changed to %q", b)
	}

	code, _, errOut = runCmd(append(args, "-force"), "", false)
	if b, _ := os.ReadFile(out); code != 0 || string(b) != string(written) {
		t.Errorf("with -force: exit %d, stderr %q, file %q; want 0 and the imported configuration", code, errOut, b)
	}
}

func TestImport_UsageAndErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // substring of stderr
	}{
		{"no source", []string{"import"}, 2, "usage: smarthost import postfix"},
		{"unknown source", []string{"import", "sendmail"}, 2, "the one source it knows is postfix"},
		{"two sources", []string{"import", "postfix", "exim"}, 2, "usage:"},
		{"help", []string{"import", "-h"}, 0, "-postfix-dir"},
		{"no main.cf", []string{"import", "postfix", "-postfix-dir", "/nonexistent/postfix"}, 1, "main.cf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(tt.args, "", false)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) || out != "" {
				t.Errorf("run(%q) = exit %d, stdout %q, stderr %q; want exit %d, no output, stderr with %q",
					tt.args, code, out, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// The README's home-server lines are the client side: nothing for
// smarthost to take over, so the result is comments only — and the SASL
// password next to them is never read.
func TestImport_ReadmeHomeServerIsCommentsOnly(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd([]string{"import", "postfix", "-root", filepath.Join(importFixtures, "readme-home")}, "", false)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for i, line := range strings.Split(out, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") {
			t.Errorf("line %d sets a value: %q", i+1, line)
		}
	}
	if strings.Contains(out, "THE-PASSWORD") {
		t.Errorf("the output contains the password from sasl_passwd")
	}
	for _, want := range []string{`# relayhost = "smtps:[mail.example.org]:465"`, "SASL login", "10025 inet n - y - - smtpd"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
