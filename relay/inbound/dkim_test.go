package inbound

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/resolve/resolvetest"
)

var (
	rsaSel   = key{rsaKey, "example.test", "rsa"}
	edSel    = key{edKey, "example.test", "ed"}
	otherSel = key{rsaOtherKey, "example.test", "rsa"} // a wrong key for rsa._domainkey
)

// dkimZone publishes the test keys of example.test, plus a few broken
// ones.
func dkimZone(t testing.TB) *resolvetest.Resolver {
	r := zone(map[string][]string{
		"rsa._domainkey.example.test":     {rsaSel.record(t)},
		"ed._domainkey.example.test":      {edSel.record(t)},
		"testing._domainkey.example.test": {strings.Replace(rsaSel.record(t), "k=rsa; ", "k=rsa; t=y; ", 1)},
		"revoked._domainkey.example.test": {"v=DKIM1; k=rsa; p="},
		"garbage._domainkey.example.test": {"v=DKIM1; k=rsa; p=!!!"},
	})
	r.ServFail["servfail._domainkey.example.test"] = true
	return r
}

// TestDKIM_Results checks every DKIM result (RFC 8601 §2.7.1) end to end,
// one Authentication-Results result per signature, in header order.
func TestDKIM_Results(t *testing.T) {
	t.Parallel()
	plain := message("alice@example.test")
	tests := []struct {
		name string
		msg  func(t *testing.T) string
		want []string // the dkim results, unfolded
	}{
		{"unsigned", func(*testing.T) string { return plain }, []string{"dkim=none"}},
		{"rsa pass", func(t *testing.T) string { return sign(t, plain, rsaSel) },
			[]string{"dkim=pass header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa"}},
		{"ed25519 pass", func(t *testing.T) string { return sign(t, plain, edSel) },
			[]string{"dkim=pass header.a=ed25519-sha256 header.b=* header.d=example.test header.s=ed"}},
		{"wrong key fails", func(t *testing.T) string { return sign(t, plain, otherSel) },
			[]string{`dkim=fail reason="signature did not verify: crypto/rsa: verification error" header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa`}},
		{"body changed after signing fails", func(t *testing.T) string {
			return strings.Replace(sign(t, plain, rsaSel), "a test.", "a tost.", 1)
		}, []string{`dkim=fail reason="body hash did not verify" header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa`}},
		{"signed header changed fails", func(t *testing.T) string {
			return strings.Replace(sign(t, plain, rsaSel), "Subject: test", "Subject: tost", 1)
		}, []string{`dkim=fail reason="signature did not verify: crypto/rsa: verification error" header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa`}},
		{"wrong key of a t=y domain is neutral", func(t *testing.T) string { return sign(t, plain, key{rsaOtherKey, "example.test", "testing"}) },
			[]string{`dkim=neutral reason="testing key: signature did not verify: crypto/rsa: verification error" header.a=rsa-sha256 header.b=* header.d=example.test header.s=testing`}},
		{"right key of a t=y domain passes", func(t *testing.T) string { return sign(t, plain, key{rsaKey, "example.test", "testing"}) },
			[]string{"dkim=pass header.a=rsa-sha256 header.b=* header.d=example.test header.s=testing"}},
		{"unpublished key is permerror", func(t *testing.T) string { return sign(t, plain, key{rsaKey, "example.test", "nokey"}) },
			[]string{`dkim=permerror reason="no key for signature" header.a=rsa-sha256 header.b=* header.d=example.test header.s=nokey`}},
		{"revoked key is permerror", func(t *testing.T) string { return sign(t, plain, key{rsaKey, "example.test", "revoked"}) },
			[]string{`dkim=permerror reason="key revoked" header.a=rsa-sha256 header.b=* header.d=example.test header.s=revoked`}},
		{"bad key record is permerror", func(t *testing.T) string { return sign(t, plain, key{rsaKey, "example.test", "garbage"}) },
			[]string{`dkim=permerror reason="key syntax error: illegal base64 data at input byte 0" header.a=rsa-sha256 header.b=* header.d=example.test header.s=garbage`}},
		{"key lookup SERVFAIL is temperror", func(t *testing.T) string { return sign(t, plain, key{rsaKey, "example.test", "servfail"}) },
			[]string{`dkim=temperror reason="key unavailable" header.a=rsa-sha256 header.b=* header.d=example.test header.s=servfail`}},
		{"malformed signature is permerror", func(*testing.T) string {
			return "DKIM-Signature: v=2; d=example.test; s=rsa; b=AAAAAAAAAA\r\n" + plain
		}, []string{`dkim=permerror reason="incompatible signature version" header.b=AAAAAAAA header.d=example.test header.s=rsa`}},
		{"two signatures, both pass, top one first", func(t *testing.T) string { return sign(t, plain, rsaSel, edSel) },
			[]string{"dkim=pass header.a=ed25519-sha256 header.b=* header.d=example.test header.s=ed",
				"dkim=pass header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa"}},
		{"two signatures, one wrong", func(t *testing.T) string { return sign(t, plain, otherSel, edSel) },
			[]string{"dkim=pass header.a=ed25519-sha256 header.b=* header.d=example.test header.s=ed",
				`dkim=fail reason="signature did not verify: crypto/rsa: verification error" header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa`}},
		{"message without body", func(t *testing.T) string {
			return sign(t, crlf("From: alice@example.test\nSubject: empty\n"), rsaSel)
		}, []string{"dkim=pass header.a=rsa-sha256 header.b=* header.d=example.test header.s=rsa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := tt.msg(t)
			for _, chunk := range []int{1, 7, 4096} {
				c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), dkimZone(t))
				got := check(t, c, envelope(goodIP), msg, chunk)
				if got.err != nil {
					t.Fatalf("chunk %d: Finish: %v", chunk, got.err)
				}
				results := dkimOf(t, got.verdict.Header)
				if !matchResults(results, tt.want) {
					t.Errorf("chunk %d: dkim results =\n%s\nwant\n%s", chunk, strings.Join(results, "\n"), strings.Join(tt.want, "\n"))
				}
			}
		})
	}
}

// dkimOf returns the dkim results of the Authentication-Results field
// in h, unfolded.
func dkimOf(t testing.TB, h []byte) []string {
	t.Helper()
	ar := headerField(h, "Authentication-Results")
	if ar == "" {
		t.Fatalf("no Authentication-Results in %q", h)
	}
	var out []string
	for _, r := range strings.Split(ar, ";")[1:] {
		if r = strings.TrimSpace(r); strings.HasPrefix(r, "dkim=") {
			out = append(out, r)
		}
	}
	return out
}

// matchResults compares results with patterns where "header.b=*" stands
// for any header.b value of at least 8 characters.
func matchResults(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if before, after, ok := strings.Cut(w, "header.b=*"); ok {
			if !strings.HasPrefix(g, before+"header.b=") {
				return false
			}
			b, rest, _ := strings.Cut(strings.TrimPrefix(g, before+"header.b="), " ")
			if len(b) < headerBMin || rest != strings.TrimPrefix(after, " ") {
				return false
			}
			continue
		}
		if g != w {
			return false
		}
	}
	return true
}

// TestDKIM_ExpiryUsesTheClock: x= is checked against the injected clock
// (RFC 6376 §3.5), not only go-msgauth's time.Now.
func TestDKIM_ExpiryUsesTheClock(t *testing.T) {
	t.Parallel()
	expires := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	msg := signGoMsgauth(t, message("alice@example.test"), rsaSel, expires)
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"before x=", expires.Add(-time.Hour), "pass"},
		{"after x=", expires.Add(time.Hour), "permerror"},
	}
	for _, tt := range tests {
		c, err := New(Options{Hostname: hostname, Config: modes(config.CheckOff, config.CheckTag, config.CheckOff), Resolver: dkimZone(t), Now: func() time.Time { return tt.now }})
		if err != nil {
			t.Fatal(err)
		}
		got := check(t, c, envelope(goodIP), msg, 4096)
		if rs := dkimOf(t, got.verdict.Header); len(rs) != 1 || !strings.HasPrefix(rs[0], "dkim="+tt.want+" ") {
			t.Errorf("%s: dkim results %q, want one %s", tt.name, rs, tt.want)
		}
	}
}

// signGoMsgauth signs with go-msgauth, whose signer (unlike ours) can set
// x=.
func signGoMsgauth(t testing.TB, msg string, k key, expires time.Time) string {
	t.Helper()
	priv, err := dkim.ReadPrivateKey(k.file)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = msgauth.Sign(&out, strings.NewReader(msg), &msgauth.SignOptions{
		Domain: k.domain, Selector: k.selector, Signer: priv,
		Expiration: expires, HeaderKeys: []string{"From", "Subject"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestDKIM_TooManySignatures: only maxSignatures signatures are verified;
// the rest are reported as policy, and no more keys are fetched.
func TestDKIM_TooManySignatures(t *testing.T) {
	t.Parallel()
	keys := make([]key, maxSignatures+2)
	for i := range keys {
		keys[i] = rsaSel
	}
	msg := sign(t, message("alice@example.test"), keys...)
	r := dkimZone(t)
	c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), r)
	got := check(t, c, envelope(goodIP), msg, 4096)
	rs := dkimOf(t, got.verdict.Header)
	if len(rs) != len(keys) {
		t.Fatalf("%d dkim results, want %d", len(rs), len(keys))
	}
	for i, res := range rs {
		want := "dkim=pass "
		if i >= maxSignatures {
			want = `dkim=policy reason="too many signatures" `
		}
		if !strings.HasPrefix(res, want) {
			t.Errorf("result %d = %q, want it to start with %q", i, res, want)
		}
	}
	if n := len(r.Queries()); n != maxSignatures {
		t.Errorf("%d key lookups, want %d", n, maxSignatures)
	}
}

// TestDKIM_HeaderBIsUnique: header.b is 8 characters, or longer where two
// signatures share the prefix (RFC 6008 §4).
func TestDKIM_HeaderBIsUnique(t *testing.T) {
	t.Parallel()
	sigs := []signature{{b: "ABCDEFGHIJ1"}, {b: "ABCDEFGHIJ2"}, {b: "ZZZZZZZZZZZ"}, {b: "short"}}
	got := headerB(sigs)
	want := []string{"ABCDEFGHIJ1", "ABCDEFGHIJ2", "ZZZZZZZZ", "short"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("headerB(%q)[%d] = %q, want %q", sigs[i].b, i, got[i], want[i])
		}
	}
}

// TestDKIM_SignaturesKeptByteForByte: the stored header keeps every
// DKIM-Signature field exactly as received, so the home server can verify
// again.
func TestDKIM_SignaturesKeptByteForByte(t *testing.T) {
	t.Parallel()
	msg := sign(t, message("alice@example.test"), rsaSel, edSel)
	c := newChecker(t, modes(config.CheckTag, config.CheckTag, config.CheckTag), dkimZone(t))
	got := check(t, c, envelope(goodIP), msg, 4096)
	if !strings.HasPrefix(msg, string(got.stored)) || !bytes.HasSuffix(got.stored, []byte("\r\n\r\n")) {
		t.Errorf("stored header is not the received one:\n%q\nreceived\n%q", got.stored, msg)
	}
	if n := fieldCount(got.stored, "DKIM-Signature"); n != 2 {
		t.Errorf("%d DKIM-Signature fields stored, want 2", n)
	}
	vs, err := dkim.Verify(strings.NewReader(string(got.stored)+msg[len(got.stored):]), func(name string) ([]string, error) {
		return dkimZone(t).LookupTXT(t.Context(), name)
	})
	if err != nil || len(vs) != 2 || vs[0].Err != nil || vs[1].Err != nil {
		t.Errorf("stored message does not verify: %v, %+v", err, vs)
	}
}

// TestDKIM_VerifierStopsEarly: when go-msgauth stops reading (no key, so
// no body hash), the rest of the body is dropped without blocking.
func TestDKIM_VerifierStopsEarly(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 1<<20)
	msg := sign(t, message("alice@example.test")+body, key{rsaKey, "example.test", "nokey"})
	c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), dkimZone(t))
	got := check(t, c, envelope(goodIP), msg, 512)
	if rs := dkimOf(t, got.verdict.Header); len(rs) != 1 || !strings.HasPrefix(rs[0], "dkim=permerror") {
		t.Errorf("dkim results %q, want one permerror", rs)
	}
	if got.err != nil {
		t.Errorf("Finish: %v", got.err)
	}
}

// TestClassify maps go-msgauth's errors to results.
func TestClassify(t *testing.T) {
	t.Parallel()
	if r, reason := classify(nil); r != "pass" || reason != "" {
		t.Errorf("classify(nil) = %s, %q; want pass", r, reason)
	}
	if r, _ := classify(errors.New("dkim: body hash did not verify")); r != "fail" {
		t.Errorf("classify(other error) = %s, want fail", r)
	}
}

// TestDKIM_ControlCharactersNeverReachTheHeader: tags of a forged
// signature with control characters are reported without them, so the
// Authentication-Results field stays one field.
func TestDKIM_ControlCharactersNeverReachTheHeader(t *testing.T) {
	t.Parallel()
	msg := "DKIM-Signature: v=1; a=rsa-sha256; d=exa\x01mple.test; s=se\x00l\x7f; i=@exa\x01mple.test;\r\n" +
		" h=from; bh=AAAA; b=AA\x1bAAAAAAAA\r\n" + message("a@example.test")
	c := newChecker(t, modes(config.CheckOff, config.CheckTag, config.CheckOff), dkimZone(t))
	got := check(t, c, envelope(goodIP), msg, 4096)
	h := got.verdict.Header
	for i, b := range h {
		if (b < ' ' && b != '\r' && b != '\n') || b == 0x7f || (b == '\n' && (i+1 == len(h) || h[i+1] != ' ') && i+1 != len(h)) {
			t.Fatalf("byte %#x at %d of %q", b, i, h)
		}
	}
	if rs := dkimOf(t, h); len(rs) != 1 || !strings.Contains(rs[0], "header.d=example.test header.i=@example.test header.s=sel") {
		t.Errorf("dkim results %q, want the tags without control characters", rs)
	}
}
