package dkim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/config"
)

func TestTable_ChoosesKeysByFrom(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "",
		keySpec{selector: "rsa", file: rsaKeyFile, sign: []string{"*@example.test", "*@*.example.test"}},
		keySpec{selector: "ed", file: edKeyFile, sign: []string{"*@example.test"}},
		keySpec{domain: "other.test", selector: "ceo", file: rsaOtherKeyFile, sign: []string{"ceo@example.test", "*@other.test"}},
		keySpec{domain: "special.test", selector: "boss", file: rsaKeyFile, sign: []string{"boss@special.test"}},
		keySpec{domain: "special.test", selector: "all", file: edKeyFile, sign: []string{"*@special.test"}},
		keySpec{domain: "default.test", selector: "d", file: rsaKeyFile}, // no sign list: *@default.test
	)
	tests := []struct {
		name string
		from string
		want string // "domain selector,selector", "" for unsigned
	}{
		{"*@domain with RSA and Ed25519 side by side", "alice@example.test", "example.test rsa,ed"},
		{"matching ignores case", "Alice@EXAMPLE.Test", "example.test rsa,ed"},
		{"*@*.domain: only the key that lists it", "bob@mail.example.test", "example.test rsa"},
		{"*@*.domain does not match the domain's lookalike", "bob@badexample.test", ""},
		{"first match wins: a later key of another domain is skipped", "ceo@example.test", "example.test rsa,ed"},
		{"the other domain's own mail", "x@other.test", "other.test ceo"},
		{"user@domain and *@domain of one domain both sign", "boss@special.test", "special.test boss,all"},
		{"user@domain matches that user only", "clerk@special.test", "special.test all"},
		{"default sign list is *@domain", "x@default.test", "default.test d"},
		{"default sign list does not cover subdomains", "x@sub.default.test", ""},
		{"no match: unsigned", "x@example.invalid", ""},
	}
	for _, tt := range tests {
		var got string
		if keys := tab.choose(tt.from); len(keys) > 0 {
			var sels []string
			for _, k := range keys {
				sels = append(sels, k.Selector)
			}
			got = keys[0].Domain + " " + strings.Join(sels, ",")
		}
		if got != tt.want {
			t.Errorf("choose(%q) (%s) = %q, want %q", tt.from, tt.name, got, tt.want)
		}
	}
}

func TestTable_SpecificKeyFirst(t *testing.T) {
	t.Parallel()
	// As in OpenDKIM's SigningTable, order matters: a user@ line before a
	// *@ line of another domain takes that user.
	tab := newTable(t, "",
		keySpec{domain: "ceo.test", selector: "c", file: rsaKeyFile, sign: []string{"ceo@example.test"}},
		keySpec{selector: "rsa", file: rsaOtherKeyFile, sign: []string{"*@example.test"}},
	)
	tests := []struct{ from, want string }{
		{"ceo@example.test", "ceo.test"},
		{"bob@example.test", "example.test"},
	}
	for _, tt := range tests {
		keys := tab.choose(tt.from)
		if len(keys) != 1 || keys[0].Domain != tt.want {
			t.Errorf("choose(%q) = %d keys, first %v; want one of %s", tt.from, len(keys), keys, tt.want)
		}
	}
}

func TestParsePrivateKey_Formats(t *testing.T) {
	t.Parallel()
	rsaPub := mustReadKey(t, rsaKeyFile).Public()
	edPub := mustReadKey(t, edKeyFile).Public()
	tests := []struct {
		file string
		want crypto.PublicKey
		algo Algorithm
	}{
		{rsaKeyFile, rsaPub, RSASHA256},
		{rsaPKCS8File, rsaPub, RSASHA256},
		{edKeyFile, edPub, Ed25519SHA256},
		{edSeedFile, edPub, Ed25519SHA256},
	}
	for _, tt := range tests {
		k := mustReadKey(t, tt.file)
		if got := k.Public().(interface{ Equal(crypto.PublicKey) bool }); !got.Equal(tt.want) {
			t.Errorf("ReadPrivateKey(%s): public key differs from the reference", tt.file)
		}
		if got := algorithmOf(k.Public()); got != tt.algo {
			t.Errorf("ReadPrivateKey(%s): algorithm %s, want %s", tt.file, got, tt.algo)
		}
	}
}

func mustReadKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	k, err := ReadPrivateKey(path)
	if err != nil {
		t.Fatalf("ReadPrivateKey(%s): %v", path, err)
	}
	return k
}

func TestLoad_ErrorsNameFileAndFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	weakFile := write("weak.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)}))
	ecFile := write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	encFile := write("enc.pem", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	junkFile := write("junk.pem", []byte("not a key\n"))
	certFile := write("cert.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name  string
		canon string
		file  string
		want  []string // substrings of the error
	}{
		{"missing file", "", missing, []string{"s1._domainkey.example.test", missing, "no such file", "smarthost dkim keygen"}},
		{"RSA under 2048 bits", "", weakFile, []string{weakFile, "1024 bits", "2048", "smarthost dkim keygen"}},
		{"ECDSA", "", ecFile, []string{ecFile, "not a DKIM key", "Ed25519"}},
		{"encrypted", "", encFile, []string{encFile, "encrypted", "openssl pkey"}},
		{"not PEM", "", junkFile, []string{junkFile, "no PEM private key", "smarthost dkim keygen"}},
		{"PEM without a key", "", certFile, []string{certFile, "no PEM private key"}},
		{"bad canonicalization", "loose", rsaKeyFile, []string{"canonicalization", "relaxed/simple"}},
	}
	for _, tt := range tests {
		_, err := Load(config.DKIM{Canonicalization: tt.canon, Keys: []config.DKIMKey{{Domain: testDomain, Selector: "s1", PrivateKey: tt.file}}})
		if err == nil {
			t.Errorf("Load(%s) succeeded, want an error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s) error %q does not contain %q", tt.name, err, w)
			}
		}
	}

	// Every bad key is reported in one pass.
	_, err = Load(config.DKIM{Keys: []config.DKIMKey{
		{Domain: testDomain, Selector: "a", PrivateKey: weakFile},
		{Domain: testDomain, Selector: "ok", PrivateKey: rsaKeyFile},
		{Domain: testDomain, Selector: "b", PrivateKey: missing},
	}})
	if err == nil || !strings.Contains(err.Error(), weakFile) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(two bad keys) error = %v, want both files named", err)
	}
}
