package dkim

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smarthost/config"
	"smarthost/relay/interop"
	"smarthost/relay/resolve"
	"smarthost/relay/resolve/resolvetest"
)

func TestCheckKey(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "",
		keySpec{selector: "rsa", file: rsaKeyFile},
		keySpec{selector: "ed", file: edKeyFile},
	)
	rsaKey, edKey := tab.Keys()[0], tab.Keys()[1]
	good := rsaKey.Record().String()
	other := mustReadKey(t, rsaOtherKeyFile)
	otherRec, err := NewRecord(other.Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    *Key
		txt    []string // nil: NXDOMAIN
		fail   string   // "servfail" or "timeout"
		want   Status
		detail string // substring of Detail
	}{
		{"published", rsaKey, []string{good}, "", StatusOK, ""},
		{"Ed25519 published", edKey, []string{edKey.Record().String()}, "", StatusOK, ""},
		{"k= omitted means rsa", rsaKey, []string{"p=" + strings.SplitN(good, "p=", 2)[1]}, "", StatusOK, ""},
		{"another key", rsaKey, []string{otherRec.String()}, "", StatusMismatch, "different public key"},
		{"RSA record for the Ed25519 key", edKey, []string{good}, "", StatusMismatch, "k=rsa"},
		{"h= without sha256", rsaKey, []string{"v=DKIM1; h=sha1; " + good[len("v=DKIM1; "):]}, "", StatusMismatch, "h=sha1"},
		{"s= without email", rsaKey, []string{"v=DKIM1; s=tls; " + good[len("v=DKIM1; "):]}, "", StatusMismatch, "s=tls"},
		{"t=y", rsaKey, []string{"v=DKIM1; t=y; " + good[len("v=DKIM1; "):]}, "", StatusTesting, "t=y"},
		{"revoked", rsaKey, []string{"v=DKIM1; k=rsa; p="}, "", StatusRevoked, "empty p="},
		{"not published", rsaKey, nil, "", StatusNotPublished, "dkim record -domain example.test -selector rsa -key " + rsaKeyFile},
		{"garbage", rsaKey, []string{"v=spf1 -all"}, "", StatusInvalid, "v= must be DKIM1"},
		{"two records", rsaKey, []string{good, good}, "", StatusInvalid, "2 TXT records"},
		{"SERVFAIL", rsaKey, nil, "servfail", StatusDNSError, "server misbehaving"},
		{"timeout", rsaKey, nil, "timeout", StatusDNSError, "timeout"},
	}
	for _, tt := range tests {
		r := &resolvetest.Resolver{TXT: map[string][]string{}, ServFail: map[string]bool{}, Timeout: map[string]bool{}}
		name := tt.key.Name()
		switch {
		case tt.fail == "servfail":
			r.ServFail[name] = true
		case tt.fail == "timeout":
			r.Timeout[name] = true
		case tt.txt != nil:
			r.TXT[name] = tt.txt
		}
		c := CheckKey(context.Background(), r, tt.key)
		if c.Status != tt.want || !strings.Contains(c.Detail, tt.detail) || c.Name != name {
			t.Errorf("CheckKey (%s) = %s, want status %s, detail containing %q", tt.name, c, tt.want, tt.detail)
		}
		if c.Status.OK() != (tt.want == StatusOK) {
			t.Errorf("CheckKey (%s): Status.OK() = %v", tt.name, c.Status.OK())
		}
	}
}

// TestKeygenRecordInDNS is the whole tool chain against a real DNS server:
// keys made by Keygen, their zone-file lines pasted into dnsmasq, and
// CheckKey looking them up through resolve.New as `dkim testkey` does.
func TestKeygenRecordInDNS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gen := func(selector string, kt Kind) KeyFiles {
		f, err := Keygen(KeygenOptions{Dir: dir, Domain: testDomain, Selector: selector, Kind: kt})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	rsaFiles, edFiles, testingFiles := gen("rsa", KindRSA2048), gen("ed", KindEd25519), gen("testing", KindEd25519)
	gen("wrong", KindRSA2048)
	gen("unpublished", KindEd25519)
	otherFiles := gen("other", KindRSA2048) // published under "wrong"

	// What an operator pastes: the strings of the zone-file line.
	paste := func(f KeyFiles, selector string) string {
		var v string
		for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(f.Record.Zone(testDomain, selector), -1) {
			v += m[1]
		}
		return v
	}
	testingRec := testingFiles.Record
	testingRec.Flags = []string{"y"}
	dns := interop.StartDNS(t, interop.Zone{
		Domains: []string{testDomain},
		TXT: map[string][]string{
			RecordName(testDomain, "rsa"):     {paste(rsaFiles, "rsa")},
			RecordName(testDomain, "ed"):      {paste(edFiles, "ed")},
			RecordName(testDomain, "wrong"):   {paste(otherFiles, "wrong")},
			RecordName(testDomain, "testing"): {testingRec.String()},
		},
	})

	var cfg config.DKIM
	for _, sel := range []string{"rsa", "ed", "wrong", "testing", "unpublished"} {
		cfg.Keys = append(cfg.Keys, config.DKIMKey{Domain: testDomain, Selector: sel, PrivateKey: filepath.Join(dir, testDomain, sel+".private")})
	}
	tab, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load(keygen output): %v", err)
	}
	want := map[string]Status{"rsa": StatusOK, "ed": StatusOK, "wrong": StatusMismatch, "testing": StatusTesting, "unpublished": StatusNotPublished}
	r := resolve.New(dns.Addr, 0)
	for _, k := range tab.Keys() {
		if c := CheckKey(context.Background(), r, k); c.Status != want[k.Selector] {
			t.Errorf("CheckKey(%s) = %s, want %s", k.Name(), c, want[k.Selector])
		}
	}

	// And mail signed with all five keys verifies against what dnsmasq
	// serves exactly for the three whose records match (t=y does not stop
	// verification; it tells receivers not to act on the result).
	signed, _ := signMessage(t, tab, []byte(corpus()[0].msg), 7)
	recs := map[string]string{}
	for _, k := range tab.Keys() {
		if txt, err := r.LookupTXT(context.Background(), k.Name()); err == nil && len(txt) == 1 {
			recs[k.Name()] = txt[0]
		}
	}
	if ok, errs := verifyGo(t, signed, recs, testDomain); ok != 3 {
		t.Errorf("%d signatures verified against DNS, want 3 (rsa, ed, testing); failures: %v", ok, errs)
	}
}
