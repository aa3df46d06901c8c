package inbound

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"

	"smarthost/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestVerdict_Golden checks testdata/golden/NAME.eml (LF line ends in the
// file, CRLF when checked, as after SMTP) and compares the header fields
// to prepend with NAME.golden. The keys and t= are fixed, and RSA PKCS #1
// v1.5 and Ed25519 signatures are deterministic, so the header.b prefixes
// are too; the clock is fixed. Regenerate with -update and review the diff.
func TestVerdict_Golden(t *testing.T) {
	t.Parallel()
	enforce := modes(config.CheckEnforce, config.CheckEnforce, config.CheckEnforce)
	tag := modes(config.CheckTag, config.CheckTag, config.CheckTag)
	tests := []struct {
		name        string
		cfg         config.Inbound
		env         Envelope
		keys        []key
		wantSummary string
		wantErr     error
	}{
		{"pass", tag, Envelope{netip.MustParseAddr(goodIP), defaultHelo, "alice@example.test"},
			[]key{rsaSel, edSel}, "spf=pass dkim=pass,pass dmarc=pass", nil},
		{"forged-from", enforce, Envelope{netip.MustParseAddr(goodIP), "mail.other.test", "bounces@other.test"},
			[]key{signer("other.test")}, "spf=pass dkim=pass dmarc=fail action=reject", ErrDMARCReject},
		{"quarantine", enforce, Envelope{netip.MustParseAddr(badIP), "mail.quar.test", "news@quar.test"},
			nil, "spf=fail dkim=none dmarc=fail action=reject", ErrSPFFail},
		{"quarantine-spf-tag", modes(config.CheckTag, config.CheckEnforce, config.CheckEnforce), Envelope{netip.MustParseAddr(badIP), "mail.quar.test", "news@quar.test"},
			nil, "spf=fail dkim=none dmarc=fail action=quarantine", nil},
		{"null-sender", tag, Envelope{netip.MustParseAddr(goodIP), "mail.example.test", ""},
			nil, "spf=pass dkim=none dmarc=pass", nil},
		{"temperror", enforce, Envelope{netip.MustParseAddr(badIP), "mail.spftemp.test", "a@spftemp.test"},
			nil, "spf=temperror dkim=none dmarc=temperror action=tempfail", ErrTempFail},
		{"wrong-key", tag, Envelope{netip.MustParseAddr("2001:db8::25"), "mail.example.test", "a@example.test"},
			[]key{otherSel}, "spf=fail dkim=fail dmarc=fail", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eml := strings.TrimSuffix(tt.name, "-spf-tag") + ".eml"
			raw, err := os.ReadFile(filepath.Join("testdata", "golden", eml))
			if err != nil {
				t.Fatal(err)
			}
			msg := sign(t, crlf(string(raw)), tt.keys...)
			r := dmarcZone(t)
			r.TXT["mail.example.test"] = []string{"v=spf1 ip4:192.0.2.0/24 -all"}
			r.TXT["ed._domainkey.example.test"] = []string{edSel.record(t)}
			c := newChecker(t, tt.cfg, r)
			got := check(t, c, tt.env, msg, 4096)
			if !errors.Is(got.err, tt.wantErr) || (tt.wantErr == nil) != (got.err == nil) {
				t.Errorf("Finish error = %v, want %v", got.err, tt.wantErr)
			}
			if got.verdict.Summary != tt.wantSummary {
				t.Errorf("Summary = %q, want %q", got.verdict.Summary, tt.wantSummary)
			}
			if n := fieldCount(got.stored, "Authentication-Results"); n != 0 {
				t.Errorf("stored header keeps %d forged Authentication-Results", n)
			}
			if n := longestLine(got.verdict.Header); n > maxLineLength {
				t.Errorf("longest line of the header is %d characters, want at most %d", n, maxLineLength)
			}
			checkGolden(t, tt.name+".golden", got.verdict.Header)

			// What we write, go-msgauth reads back.
			id, results, err := authres.Parse(headerField(got.verdict.Header, "Authentication-Results"))
			if err != nil || id != hostname || len(results) != len(strings.Fields(got.verdict.Summary))-strings.Count(got.verdict.Summary, "action=")+strings.Count(got.verdict.Summary, ",") {
				t.Errorf("authres.Parse = %q, %d results, %v; want %s and the results of %q", id, len(results), err, hostname, got.verdict.Summary)
			}
		})
	}
}

// checkGolden compares got with testdata/golden/name, or rewrites the
// file under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (- want, + got):\n%s", path, lineDiff(string(want), string(got)))
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
			b.WriteString("  " + strings.TrimSuffix(wl, "\r") + "\n")
			continue
		}
		if i < len(w) {
			b.WriteString("- " + strings.TrimSuffix(wl, "\r") + "\n")
		}
		if i < len(g) {
			b.WriteString("+ " + strings.TrimSuffix(gl, "\r") + "\n")
		}
	}
	return b.String()
}
