package dkim

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		txt     string
		want    Record
		wantErr bool
	}{
		{"minimal", "p=AAAA", Record{KeyType: "rsa", PublicKey: []byte{0, 0, 0}}, false},
		{"k defaults to rsa, v first", "v=DKIM1; p=AAAA", Record{KeyType: "rsa", PublicKey: []byte{0, 0, 0}}, false},
		{"ed25519", "v=DKIM1; k=ed25519; p=AAAA", Record{KeyType: "ed25519", PublicKey: []byte{0, 0, 0}}, false},
		{"white space and folding around tags and in p=", " v = DKIM1 ;\tk=rsa;\r\n p = AA AA ; ", Record{KeyType: "rsa", PublicKey: []byte{0, 0, 0}}, false},
		{"strings joined without separator", "v=DKIM1; k=rsa; " + "p=AA" + "AA", Record{KeyType: "rsa", PublicKey: []byte{0, 0, 0}}, false},
		{"flags, hashes, services", "v=DKIM1; h=sha1 : sha256; s=email; t=y:s; p=AAAA",
			Record{KeyType: "rsa", PublicKey: []byte{0, 0, 0}, Hashes: []string{"sha1", "sha256"}, Services: []string{"email"}, Flags: []string{"y", "s"}}, false},
		{"unknown tags ignored", "v=DKIM1; n=notes here; x-foo=bar; p=AAAA", Record{KeyType: "rsa", PublicKey: []byte{0, 0, 0}}, false},
		{"empty p= is revoked, not invalid", "v=DKIM1; p=", Record{KeyType: "rsa", PublicKey: []byte{}}, false},

		{"no p=", "v=DKIM1; k=rsa", Record{}, true},
		{"v= not first", "k=rsa; v=DKIM1; p=AAAA", Record{}, true},
		{"v= other version", "v=DKIM2; p=AAAA", Record{}, true},
		{"duplicate tag", "p=AAAA; p=AAAA", Record{}, true},
		{"tag names are case-sensitive", "P=AAAA", Record{}, true},
		{"unknown key type", "k=dsa; p=AAAA", Record{}, true},
		{"p= not base64", "p=!!!!", Record{}, true},
		{"not a tag list", "hello world", Record{}, true},
		{"SPF record", "v=spf1 -all", Record{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRecord(tt.txt)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRecord(%q) (%s) error = %v, want error %v", tt.txt, tt.name, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRecord(%q) (%s) = %+v, want %+v", tt.txt, tt.name, got, tt.want)
		}
	}
}

func TestRecord_FormatsRoundTrip(t *testing.T) {
	t.Parallel()
	quotedString := regexp.MustCompile(`"([^"]*)"`)
	for _, file := range []string{rsaKeyFile, edKeyFile} {
		key := mustReadKey(t, file)
		rec, err := NewRecord(key.Public())
		if err != nil {
			t.Fatalf("NewRecord(%s): %v", file, err)
		}
		value := rec.String()
		if !strings.HasPrefix(value, "v=DKIM1; k="+algorithmOf(key.Public()).keyType()+"; p=") {
			t.Errorf("%s: record %q, want v=DKIM1; k=…; p=…", file, value)
		}

		// The zone-file line: name, class, type, and ≤255-octet strings
		// that join back to the value.
		zone := rec.Zone("example.test.", "sel")
		if want := `sel._domainkey.example.test. IN TXT ( "`; !strings.HasPrefix(zone, want) || !strings.HasSuffix(zone, `" )`) {
			t.Errorf("%s: Zone = %q, want %s… )", file, zone, want)
		}
		var joined string
		for _, m := range quotedString.FindAllStringSubmatch(zone, -1) {
			if len(m[1]) > 255 {
				t.Errorf("%s: zone string of %d octets, want at most 255", file, len(m[1]))
			}
			joined += m[1]
		}
		if joined != value {
			t.Errorf("%s: zone strings join to %q, want %q", file, joined, value)
		}

		// Parsing the value gives back the public key.
		parsed, err := ParseRecord(value)
		if err != nil {
			t.Fatalf("ParseRecord(%q): %v", value, err)
		}
		pub, err := parsed.Key()
		if err != nil {
			t.Fatalf("Record.Key: %v", err)
		}
		if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
			t.Errorf("%s: public key from the record differs from the private key's", file)
		}
	}
}

func TestRecord_KeyAcceptsPKCS1RSA(t *testing.T) {
	t.Parallel()
	// RFC 6376 §3.6.1 literally says RSAPublicKey; some records do that.
	pub := mustReadKey(t, rsaKeyFile).Public().(*rsa.PublicKey)
	rec, err := ParseRecord("v=DKIM1; p=" + base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rec.Key()
	if err != nil || !pub.Equal(got) {
		t.Errorf("Key() of a PKCS#1 record = %v, %v; want the RSA key", got, err)
	}
}
