package dkim

import (
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeygen_WritesKeyAndRecord(t *testing.T) {
	t.Parallel()
	for _, kt := range []Kind{KindRSA2048, KindEd25519} {
		dir := filepath.Join(t.TempDir(), "dkim") // does not exist yet
		files, err := Keygen(KeygenOptions{Dir: dir, Domain: "Example.TEST.", Selector: "2026a", Kind: kt})
		if err != nil {
			t.Fatalf("Keygen(%s): %v", kt, err)
		}
		wantPriv := filepath.Join(dir, "example.test", "2026a.private")
		wantTxt := filepath.Join(dir, "example.test", "2026a.txt")
		if files.PrivateKey != wantPriv || files.RecordFile != wantTxt {
			t.Errorf("Keygen(%s) files = %s, %s; want %s, %s", kt, files.PrivateKey, files.RecordFile, wantPriv, wantTxt)
		}
		for _, p := range []struct {
			path string
			mode os.FileMode
		}{{wantPriv, 0o600}, {filepath.Dir(wantPriv), 0o700 | os.ModeDir}, {dir, 0o700 | os.ModeDir}} {
			st, err := os.Stat(p.path)
			if err != nil || st.Mode() != p.mode {
				t.Errorf("Keygen(%s): %s mode %v (%v), want %v", kt, p.path, st.Mode(), err, p.mode)
			}
		}

		key, err := ReadPrivateKey(wantPriv)
		if err != nil {
			t.Fatalf("Keygen(%s) wrote a key ReadPrivateKey refuses: %v", kt, err)
		}
		if want := map[Kind]Algorithm{KindRSA2048: RSASHA256, KindEd25519: Ed25519SHA256}[kt]; algorithmOf(key.Public()) != want {
			t.Errorf("Keygen(%s) wrote a %s key", kt, algorithmOf(key.Public()))
		}
		pub, err := files.Record.Key()
		if err != nil || !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
			t.Errorf("Keygen(%s): returned record does not hold the written key (%v)", kt, err)
		}
		txt, err := os.ReadFile(wantTxt)
		if err != nil {
			t.Fatal(err)
		}
		if want := files.Record.Zone("example.test", "2026a") + " ; ----- DKIM key 2026a for example.test\n"; string(txt) != want {
			t.Errorf("Keygen(%s) .txt = %q, want %q", kt, txt, want)
		}
	}
}

func TestKeygen_NeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := KeygenOptions{Dir: dir, Domain: "example.test", Selector: "s", Kind: KindEd25519}
	if _, err := Keygen(opts); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "example.test", "s.private")
	before, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Keygen(opts)
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), priv) {
		t.Errorf("second Keygen error = %v, want %s already exists", err, priv)
	}
	if after, _ := os.ReadFile(priv); string(after) != string(before) {
		t.Error("second Keygen changed the existing key")
	}
}

func TestKeygen_RejectsBadNames(t *testing.T) {
	t.Parallel()
	tests := []struct{ domain, selector, want string }{
		{"", "s", "not a domain"},
		{"../etc", "s", "not a domain"},
		{"example.test", "", "not a selector"},
		{"example.test", "../x", "not a selector"},
		{"example.test", "a/b", "not a selector"},
		{"example.test", "a..b", "not a selector"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		_, err := Keygen(KeygenOptions{Dir: dir, Domain: tt.domain, Selector: tt.selector})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Keygen(%q, %q) error = %v, want %q", tt.domain, tt.selector, err, tt.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("Keygen(%q, %q) wrote %d entries despite the error", tt.domain, tt.selector, len(entries))
		}
	}
}

func TestInstructions(t *testing.T) {
	t.Parallel()
	rec, err := NewRecord(mustReadKey(t, rsaKeyFile).Public())
	if err != nil {
		t.Fatal(err)
	}
	got := Instructions("example.test", "sel", rec)
	for _, want := range []string{
		"name:  sel._domainkey.example.test\n",
		"value: " + rec.String() + "\n",
		"\n" + rec.Zone("example.test", "sel") + "\n",
		"smarthost dkim testkey",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Instructions() does not contain %q:\n%s", want, got)
		}
	}
}
