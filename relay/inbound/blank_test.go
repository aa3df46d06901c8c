package inbound

import (
	"bytes"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"smarthost/config"
	"smarthost/relay/dkim"
)

// signCanon signs msg with rsaSel through go-msgauth with the given body
// canonicalization, so that what the verifier checks is the library's
// own canonicalization of the whole body; only our feeding of it to the
// verifier (holding back CRLFs) is under test.
func signCanon(t testing.TB, msg string, canon msgauth.Canonicalization) string {
	t.Helper()
	priv, err := dkim.ReadPrivateKey(rsaSel.file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := msgauth.Sign(&out, strings.NewReader(msg), &msgauth.SignOptions{
		Domain: rsaSel.domain, Selector: rsaSel.selector, Signer: priv,
		HeaderCanonicalization: canon, BodyCanonicalization: canon,
		HeaderKeys: []string{"From", "Subject"},
	}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestDKIM_BlankLinesKeepTheBodyHash: holding back runs of CRLF changes
// no body hash, in either canonicalization, however the body is cut into
// chunks (1-byte chunks split every CRLF).
func TestDKIM_BlankLinesKeepTheBodyHash(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"empty":                      "",
		"one empty line":             "\r\n",
		"only empty lines":           "\r\n\r\n\r\n",
		"no final CRLF":              "x",
		"one line":                   "x\r\n",
		"trailing empty lines":       "x\r\n\r\n\r\n",
		"empty lines inside":         "x\r\n\r\n\r\ny\r\n",
		"leading empty lines":        "\r\n\r\nx\r\n",
		"white space lines at end":   "x \r\n \r\n\r\n",
		"white space only":           "  \r\n\r\n",
		"lone CR at the end":         "x\r\n\r\n\r",
		"lone CR inside":             "x\r\r\n\r\ny\r\n",
		"CR before an empty line":    "x\r\r\n",
		"empty lines under the cap":  "a\r\n" + strings.Repeat("\r\n", 30000) + "b\r\n",
		"empty lines over the cap":   "a\r\n" + strings.Repeat("\r\n", 1<<17),
		"many short runs":            strings.Repeat("a\r\n\r\n\r\n", 5000),
		"white space under the cap":  "a\r\n" + strings.Repeat(" \t\r\n", 10000) + "b\r\n",
		"blank run across flush":     "a  \r\n\r\n" + strings.Repeat("\r\n", 100) + " b\r\n",
		"CRLF split from text after": "a\r\n\r\nb",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := crlf("From: a@example.test\nSubject: blank\n\n") + body
			for _, canon := range []msgauth.Canonicalization{msgauth.CanonicalizationSimple, msgauth.CanonicalizationRelaxed} {
				signed := signCanon(t, msg, canon)
				for _, chunk := range []int{1, 3, 4096} {
					if chunk == 1 && len(body) > 1<<16 {
						continue // slow, and nothing new
					}
					c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), dkimZone(t))
					got := check(t, c, envelope(goodIP), signed, chunk)
					if rs := dkimOf(t, got.verdict.Header); len(rs) != 1 || !strings.HasPrefix(rs[0], "dkim=pass ") {
						t.Errorf("%s, chunks of %d: %q, want pass", canon, chunk, rs)
					}
				}
			}
		})
	}
}

// TestDKIM_LongBlankRunIsPolicy: a run of blank lines longer than
// maxBlankRun followed by more text is not verified (dkim=policy), and
// neither is a long run of white-space lines, which go-msgauth would hold
// in memory. A long run of empty lines at the very end is fine.
func TestDKIM_LongBlankRunIsPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty lines, then text", "a\r\n" + strings.Repeat("\r\n", maxBlankRun/2+1) + "b\r\n", "policy"},
		{"white space lines, then text", "a\r\n" + strings.Repeat(" \r\n", maxBlankRun/3+1) + "b\r\n", "policy"},
		{"white space lines at the end", "a\r\n" + strings.Repeat(" \r\n", maxBlankRun/3+1), "policy"},
		{"empty lines at the end", "a\r\n" + strings.Repeat("\r\n", 4*maxBlankRun), "pass"},
		{"just under the cap", "a\r\n" + strings.Repeat("\r\n", maxBlankRun/2-1) + "b\r\n", "pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := signCanon(t, crlf("From: a@example.test\nSubject: blank\n\n")+tt.body, msgauth.CanonicalizationSimple)
			c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), dkimZone(t))
			got := check(t, c, envelope(goodIP), msg, 4096)
			if rs := dkimOf(t, got.verdict.Header); len(rs) != 1 || !strings.HasPrefix(rs[0], "dkim="+tt.want+" ") {
				t.Errorf("dkim results %q, want one %s", rs, tt.want)
			}
			if got.err != nil {
				t.Errorf("Finish: %v", got.err)
			}
		})
	}
}

// TestDKIM_EmptyLinesCostNothing: 32 MiB of empty lines at the end of a
// signed body. Passed on, go-msgauth's simple canonicalization would copy
// the run again on every 4 KiB read (16 MiB took a minute of CPU, 32 MiB
// would take four); held back, the check takes about as long as reading
// it. The bound is generous. The message is signed by our signer
// (relaxed/simple): go-msgauth's signer has the same quadratic cost.
func TestDKIM_EmptyLinesCostNothing(t *testing.T) {
	t.Parallel()
	msg := sign(t, crlf("From: a@example.test\nSubject: blank\n\nx\n")+strings.Repeat("\r\n", 16<<20), rsaSel)
	c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), dkimZone(t))
	start := time.Now()
	got := check(t, c, envelope(goodIP), msg, 32<<10)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("check took %v", d)
	}
	if rs := dkimOf(t, got.verdict.Header); len(rs) != 1 || !strings.HasPrefix(rs[0], "dkim=pass ") {
		t.Errorf("dkim results %q, want pass", rs)
	}
}

// TestCRLFSuffix finds the run held back.
func TestCRLFSuffix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"\r\n", 0}, {"\r", 0}, {"\r\n\r", 0}, {"x", 1}, {"x\r\n", 1},
		{"x\r\n\r\n\r", 1}, {"\n", 1}, {"\n\r\n", 1}, {"\r\r\n", 1}, {"x ", 2},
	}
	for _, tt := range tests {
		if got := crlfSuffix([]byte(tt.in)); got != tt.want {
			t.Errorf("crlfSuffix(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
