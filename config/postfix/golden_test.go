package postfix

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenCases are the fixture trees under testdata: each is the root of a
// machine's file system (etc/postfix/main.cf, etc/opendkim.conf, ...).
var goldenCases = []struct {
	name string
	// opendkim is the opendkim.conf path on the imported machine; "" to
	// import no OpenDKIM setup.
	opendkim string
	// allowed are config problems the result may have besides files that
	// do not exist here: settings the Postfix setup itself lacks.
	allowed []string
}{
	// The README's VPS: relay domain forwarded home, submission and
	// submissions, OpenDKIM with KeyTable and SigningTable (refile:).
	{name: "vps", opendkim: DefaultOpenDKIMConf},
	// hash: tables, relayhost with SASL, $-expansion, continuation lines,
	// postscreen, a plain SigningTable and many untranslatable entries.
	{name: "tables", opendkim: DefaultOpenDKIMConf},
	// No master.cf, legacy compatibility level, relay_transport, the
	// single-key OpenDKIM form (Domain, Selector, KeyFile, SubDomains).
	{name: "minimal", opendkim: DefaultOpenDKIMConf},
	// The home server's main.cf and master.cf lines the README quotes: the
	// client side, nothing for smarthost to take over. No myhostname, no
	// certificate.
	{name: "readme-home", opendkim: DefaultOpenDKIMConf, allowed: []string{"hostname", "tls"}},
	// Debian 12's stock main.cf and master.cf: snakeoil certificate, a
	// host name that is not fully qualified, no OpenDKIM.
	{name: "debian-stock", allowed: []string{"hostname"}},
}

// TestImport_Golden imports each fixture tree and compares the result with
// testdata/NAME.golden (regenerate with -update and review the diff).
func TestImport_Golden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Import(Options{Root: filepath.Join("testdata", tc.name), OpenDKIMConf: tc.opendkim})
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			checkGolden(t, tc.name+".golden", string(res.TOML))
			if got, want := len(res.NotTranslated), strings.Count(string(res.TOML), "# NOT TRANSLATED: "); got != want {
				t.Errorf("NotTranslated has %d entries, the text %d NOT TRANSLATED comments", got, want)
			}
		})
	}
}

// TestImport_GoldenPassesConfigParse checks that every golden file is a
// configuration smarthost accepts, apart from files that do not exist on
// this machine (they are paths on the imported one) and the settings the
// case allows to be missing.
func TestImport_GoldenPassesConfigParse(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(filepath.Join("testdata", tc.name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parseProblems(t, tc.name+".toml", string(src)) {
				if !p.Warning && !missingFile(p) && !contains(tc.allowed, p.Key) {
					t.Errorf("config.Parse: %s", p)
				}
			}
		})
	}
}

// parseProblems runs config.Parse and returns its problems, failing the
// test on any other error.
func parseProblems(t *testing.T, name, src string) []config.Problem {
	t.Helper()
	_, warnings, err := config.Parse(filepath.Join(t.TempDir(), name), src)
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		return cerr.Problems
	case err != nil:
		t.Fatalf("config.Parse: %v", err)
	}
	return warnings
}

// missingFile reports a problem about a file that does not exist (or is
// not readable) here.
func missingFile(p config.Problem) bool {
	return strings.HasSuffix(p.Message, "does not exist") || strings.HasSuffix(p.Message, "permission denied")
}

// checkGolden compares got with testdata/name, or rewrites the file under
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (- want, + got):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows two texts line by line, marking the lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			b.WriteString("  " + wl + "\n")
			continue
		}
		if i < len(w) {
			b.WriteString("- " + wl + "\n")
		}
		if i < len(g) {
			b.WriteString("+ " + gl + "\n")
		}
	}
	return b.String()
}

// The client-side SASL password file sits next to main.cf in two fixtures;
// its passwords must never reach the result (the importer does not read
// it at all).
func TestImport_NeverCopiesSASLPasswords(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, tc := range goldenCases {
		src, err := os.ReadFile(filepath.Join("testdata", tc.name, "etc", "postfix", "sasl_passwd"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		res, err := Import(Options{Root: filepath.Join("testdata", tc.name), OpenDKIMConf: tc.opendkim})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(src)), "\n") {
			f := strings.Fields(line)
			_, password, _ := strings.Cut(f[len(f)-1], ":")
			checked++
			if strings.Contains(string(res.TOML), password) {
				t.Errorf("%s: the result contains the password of %q", tc.name, f[0])
			}
		}
	}
	if checked < 2 {
		t.Errorf("checked %d passwords, want the fixtures' two", checked)
	}
}
