package postfix

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzImport feeds arbitrary main.cf, master.cf, transport table and
// KeyTable text to Import and checks the invariants of the package: the
// result is always a configuration config.Parse decodes without syntax
// errors, unknown keys or values it cannot read, failing only on files
// that do not exist here and on the settings the input did not provide
// (a host name, a certificate); and every NOT TRANSLATED comment is in
// Result.NotTranslated.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"vps", "tables", "minimal", "readme-home"} {
		dir := filepath.Join("testdata", name, "etc")
		main, _ := os.ReadFile(filepath.Join(dir, "postfix", "main.cf"))
		master, _ := os.ReadFile(filepath.Join(dir, "postfix", "master.cf"))
		transport, _ := os.ReadFile(filepath.Join(dir, "postfix", "transport"))
		keys, _ := os.ReadFile(filepath.Join(dir, "opendkim", "KeyTable"))
		f.Add(string(main), string(master), string(transport), string(keys))
	}
	f.Add("mynetworks = [fe80::1%eth0]/64 0.0.0.0/0\nrelay_domains = a..b, .x.example\ntransport_maps = hash:/etc/postfix/transport\n",
		"[::1]:smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n", "a.example smtp:[::1]:99999\n* relay:\n", "k %:s:/x\n")
	f.Fuzz(func(t *testing.T, mainCF, masterCF, transport, keyTable string) {
		root := t.TempDir()
		for name, content := range map[string]string{
			"etc/postfix/main.cf":   mainCF + "\ntransport_maps = hash:/etc/postfix/transport\n",
			"etc/postfix/master.cf": masterCF,
			"etc/postfix/transport": transport,
			"etc/opendkim.conf":     "KeyTable /etc/opendkim/KeyTable\n",
			"etc/opendkim/KeyTable": keyTable,
		} {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		res, err := Import(Options{Root: root, OpenDKIMConf: DefaultOpenDKIMConf})
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		text := string(res.TOML)
		if got, want := len(res.NotTranslated), strings.Count(text, "# NOT TRANSLATED: "); got != want {
			t.Errorf("NotTranslated has %d entries, the text %d comments", got, want)
		}
		for _, p := range parseProblems(t, "smarthost.toml", text) {
			switch {
			case p.Warning || missingFile(p):
			case p.Key == "hostname" && !setsKey(text, "hostname"):
			case p.Key == "tls" && !setsKey(text, "cert_file"):
			default:
				t.Errorf("config.Parse: %s\n%s", p, text)
			}
		}
	})
}

// setsKey reports whether the TOML text assigns key at the start of a line.
func setsKey(text, key string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = `).MatchString(text)
}
