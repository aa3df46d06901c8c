package dkim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestSign_Golden signs testdata/golden/NAME.eml with the fixed test keys
// (RSA and Ed25519) at the fixed time and compares the DKIM-Signature
// fields with NAME.CANON.golden. Both algorithms are deterministic (PKCS #1
// v1.5 and Ed25519 use no randomness) and t= comes from the table's clock,
// so the whole field is compared, b= included: any change to
// canonicalization, the h= list, tag order or folding shows up. Each golden
// file is also verified with go-msgauth, so a regenerated one cannot be
// wrong unnoticed.
func TestSign_Golden(t *testing.T) {
	t.Parallel()
	emls, err := filepath.Glob("testdata/golden/*.eml")
	if err != nil || len(emls) == 0 {
		t.Fatalf("no testdata/golden/*.eml: %v", err)
	}
	for _, canon := range []string{"relaxed/simple", "simple/simple"} {
		tab := newTable(t, canon, rsaAndEd()...)
		for _, eml := range emls {
			msg, err := os.ReadFile(eml)
			if err != nil {
				t.Fatal(err)
			}
			_, sigs := signMessage(t, tab, msg, 4096)
			name := strings.TrimSuffix(filepath.Base(eml), ".eml") + "." + strings.ReplaceAll(canon, "/", "-") + ".golden"
			checkGolden(t, name, sigs.Header)

			golden, err := os.ReadFile(filepath.Join("testdata", "golden", name))
			if err != nil {
				t.Fatal(err)
			}
			if ok, errs := verifyGo(t, append(golden, msg...), records(tab), testDomain); ok != 2 {
				t.Errorf("%s: %d of 2 golden signatures verify with go-msgauth: %v", name, ok, errs)
			}
		}
	}
}
