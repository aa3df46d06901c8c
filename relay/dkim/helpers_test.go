package dkim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"smarthost/config"
)

// The keys in testdata/ are throw-away keys made for these tests; nothing
// anywhere trusts them.
const (
	rsaKeyFile      = "testdata/rsa2048.pem"       // PKCS#1
	rsaPKCS8File    = "testdata/rsa2048-pkcs8.pem" // the same key, PKCS#8
	rsaOtherKeyFile = "testdata/rsa2048-other.pem" // another RSA key
	edKeyFile       = "testdata/ed25519.pem"       // PKCS#8
	edSeedFile      = "testdata/ed25519.seed"      // the same key, dkimpy's form
	testDomain      = "example.test"               // every test key signs for it
	testTime        = 1_790_000_000                // 2026-09-21, the fixed t=
	maxHeaderSize   = 1 << 20                      // as config's default
	foreignSig      = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=foreign.invalid;\r\n" +
		" s=old; t=1; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n" +
		" b=AAAA\r\n"
)

// keySpec is a [[dkim.key]] for tests.
type keySpec struct {
	selector, file string
	domain         string   // "" means testDomain
	sign           []string // "" means the default
}

// newTable loads a table with a fixed clock, failing the test on error.
func newTable(t testing.TB, canon string, keys ...keySpec) *Table {
	t.Helper()
	cfg := config.DKIM{Canonicalization: canon}
	for _, k := range keys {
		ck := config.DKIMKey{Domain: k.domain, Selector: k.selector, PrivateKey: k.file}
		if ck.Domain == "" {
			ck.Domain = testDomain
		}
		for _, s := range k.sign {
			p, err := config.ParseAddressPattern(s)
			if err != nil {
				t.Fatalf("ParseAddressPattern(%q): %v", s, err)
			}
			ck.Sign = append(ck.Sign, p)
		}
		cfg.Keys = append(cfg.Keys, ck)
	}
	tab, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tab.Now = func() time.Time { return time.Unix(testTime, 0) }
	return tab
}

// rsaAndEd is the usual pair: RSA and Ed25519 side by side.
func rsaAndEd() []keySpec {
	return []keySpec{{selector: "rsa", file: rsaKeyFile}, {selector: "ed", file: edKeyFile}}
}

// signMessage signs msg the way the SMTP session will: header section
// first, then the body in chunks of the given size. It returns the signed
// message (signatures prepended) and the result of Finish.
func signMessage(t testing.TB, tab *Table, msg []byte, chunk int) ([]byte, Signatures) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(msg))
	header, err := ReadHeader(br, maxHeaderSize)
	if err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	from, err := ParseFrom(header)
	if err != nil {
		t.Fatalf("ParseFrom: %v", err)
	}
	s, err := tab.Signer(header, from)
	if err != nil || s == nil {
		t.Fatalf("Signer(%q) = %v, %v; want a signer", from, s, err)
	}
	body := msg[len(header):]
	for len(body) > 0 {
		n := min(chunk, len(body))
		if _, err := s.Write(body[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		body = body[n:]
	}
	sigs, err := s.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return append(append([]byte(nil), sigs.Header...), msg...), sigs
}

// wireForm returns msg as SMTP delivers it: DATA always ends with CRLF
// before the final dot (RFC 5321 §4.1.1.4), so a client adds one to a
// message that lacks it, and that is what every verifier sees. (dkimpy,
// given the message without the CRLF, keeps one space of trailing white
// space on the last line under relaxed body canonicalization, where
// go-msgauth and we remove it; on the wire form all three agree.)
func wireForm(msg []byte) []byte {
	if bytes.HasSuffix(msg, []byte("\r\n")) {
		return msg
	}
	return append(msg[:len(msg):len(msg)], "\r\n"...)
}

// records returns the TXT records of the table's keys, by name.
func records(tab *Table) map[string]string {
	m := map[string]string{}
	for _, k := range tab.Keys() {
		m[k.Name()] = k.Record().String()
	}
	return m
}

// verifyGo verifies signed with go-msgauth and returns how many signatures
// of domain verified, and the errors of those that did not.
func verifyGo(t testing.TB, signed []byte, recs map[string]string, domain string) (int, []error) {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(signed), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := recs[strings.TrimSuffix(name, ".")]; ok {
				return []string{r}, nil
			}
			return nil, fmt.Errorf("no record for %s", name)
		},
	})
	if err != nil {
		t.Fatalf("go-msgauth Verify: %v", err)
	}
	var ok int
	var errs []error
	for _, v := range vs {
		if v.Domain != domain {
			continue
		}
		if v.Err == nil {
			ok++
		} else {
			errs = append(errs, v.Err)
		}
	}
	return ok, errs
}

// sigTags parses the tags of each DKIM-Signature field in header.
func sigTags(t testing.TB, header []byte) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, f := range splitFields(header) {
		if !strings.EqualFold(f.name, "DKIM-Signature") {
			continue
		}
		l, err := parseTagList(string(f.value()))
		if err != nil {
			t.Fatalf("parse DKIM-Signature tags: %v", err)
		}
		m := map[string]string{}
		for _, tg := range l {
			m[tg.name] = removeWSP(tg.value)
		}
		out = append(out, m)
	}
	return out
}

// checkGolden compares got with testdata/golden/name, or rewrites the file
// under -update, and shows a line diff on failure.
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
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	var diff strings.Builder
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			fmt.Fprintf(&diff, "line %d:\n  -%q\n  +%q\n", i+1, w, g)
		}
	}
	t.Errorf("%s differs from the golden file (-want +got; go test -update rewrites it):\n%s", path, diff.String())
}
