package inbound

import (
	"bytes"
	"strings"
	"testing"

	"smarthost/config"
)

// TestRemoveForged: Authentication-Results fields claiming our authserv-id
// go (RFC 8601 §5), in any case, after comments and folding; every other
// byte stays.
func TestRemoveForged(t *testing.T) {
	t.Parallel()
	const rest = "From: a@example.test\r\nSubject: x\r\n\r\n"
	tests := []struct {
		name    string
		field   string
		removed bool
	}{
		{"plain", "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a@example.test\r\n", true},
		{"other case", "authentication-results: MX.Example.ORG; dkim=pass\r\n", true},
		{"comment before the id", "Authentication-Results: (trust me) mx.example.org; dmarc=pass\r\n", true},
		{"nested comment with quoted-pair", "Authentication-Results: (a (b\\) c) d) mx.example.org; dmarc=pass\r\n", true},
		{"folded before the id", "Authentication-Results:\r\n\tmx.example.org;\r\n spf=pass\r\n", true},
		{"quoted id", "Authentication-Results: \"mx.example.org\"; spf=pass\r\n", true},
		{"trailing dot", "Authentication-Results: mx.example.org.; spf=pass\r\n", true},
		{"version after the id", "Authentication-Results: mx.example.org 1; spf=pass\r\n", true},
		{"no space before ;", "Authentication-Results: mx.example.org;spf=pass\r\n", true},
		{"white space before the colon", "Authentication-Results : mx.example.org; spf=pass\r\n", true},
		{"bare LF", "Authentication-Results: mx.example.org; spf=pass\n", true},
		{"other authserv-id", "Authentication-Results: mx.example.net; spf=pass\r\n", false},
		{"our name as a suffix", "Authentication-Results: evil-mx.example.org; spf=pass\r\n", false},
		{"our name as a prefix", "Authentication-Results: mx.example.org.evil.test; spf=pass\r\n", false},
		{"our name in a comment only", "Authentication-Results: (mx.example.org) other.test; spf=pass\r\n", false},
		{"our name later in the field", "Authentication-Results: other.test; spf=pass smtp.mailfrom=mx.example.org\r\n", false},
		{"another field name", "X-Authentication-Results: mx.example.org; spf=pass\r\n", false},
		{"ARC's field", "ARC-Authentication-Results: i=1; mx.example.org; spf=pass\r\n", false},
		{"empty value", "Authentication-Results:\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := []byte("Received: from a by b\r\n" + tt.field + rest)
			got, n := removeForged(in, hostname)
			want := in
			if tt.removed {
				want = []byte("Received: from a by b\r\n" + rest)
			}
			if !bytes.Equal(got, want) || (n == 1) != tt.removed {
				t.Errorf("removeForged(%q) = %q (%d removed), want %q", in, got, n, want)
			}
		})
	}
}

// TestHeader_StoredHeaderDropsOnlyForgeries: Check.Header removes every
// forged field, keeps the others (a signature included) in order, and
// does so even with every check off.
func TestHeader_StoredHeaderDropsOnlyForgeries(t *testing.T) {
	t.Parallel()
	in := "Authentication-Results: mx.example.org; dkim=pass header.d=example.test\r\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=x;\r\n\tb=AAAA; bh=BBBB; h=from\r\n" +
		"Authentication-Results: upstream.example.net; spf=fail\r\n" +
		"Received: from x\r\n" +
		"AUTHENTICATION-RESULTS: (again) Mx.Example.Org ; dmarc=pass\r\n" +
		"From: a@example.test\r\n\r\n"
	want := "DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=x;\r\n\tb=AAAA; bh=BBBB; h=from\r\n" +
		"Authentication-Results: upstream.example.net; spf=fail\r\n" +
		"Received: from x\r\n" +
		"From: a@example.test\r\n\r\n"
	for _, m := range []config.CheckMode{config.CheckOff, config.CheckTag} {
		c := newChecker(t, modes(m, m, m), zone(nil))
		got := check(t, c, envelope(goodIP), in+"body\r\n", 4096)
		if string(got.stored) != want {
			t.Errorf("%s: stored header =\n%q\nwant\n%q", m, got.stored, want)
		}
	}
}

// TestAuthservID reads the authserv-id after CFWS (RFC 8601 §2.2).
func TestAuthservID(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{" mx.example.org; spf=pass", "mx.example.org"},
		{" (c) mx.example.org 1; none", "mx.example.org"},
		{"\r\n\t\"mx.example.org\"; none", "mx.example.org"},
		{` "a\"b"; none`, `a"b`},
		{" mx.example.org(comment); none", "mx.example.org"},
		{"  ", ""},
		{" (unterminated comment", ""},
	}
	for _, tt := range tests {
		if got := authservID([]byte(tt.in)); got != tt.want {
			t.Errorf("authservID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSplitHeader: fields, continuation lines and the rest put back
// together give the header byte for byte.
func TestSplitHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		wantFields int
		wantRest   string
	}{
		{"A: 1\r\nB: 2\r\n\tcont\r\n\r\n", 2, "\r\n"},
		{"A: 1\r\nB: 2\r\n", 2, ""},
		{"A: 1\nB: 2\n\n", 2, "\n"},
		{"A: 1\r\nnot a field\r\n\r\n", 2, "\r\n"},
		{"\r\n", 0, "\r\n"},
		{"A: no line end", 1, ""},
	}
	for _, tt := range tests {
		fields, rest := splitHeader([]byte(tt.in))
		var joined []byte
		for _, f := range fields {
			joined = append(joined, f.raw...)
		}
		joined = append(joined, rest...)
		if len(fields) != tt.wantFields || string(rest) != tt.wantRest || string(joined) != tt.in {
			t.Errorf("splitHeader(%q) = %d fields, rest %q, joined %q; want %d, %q, the input", tt.in, len(fields), rest, joined, tt.wantFields, tt.wantRest)
		}
	}
}

// TestFoldField folds at token boundaries to 78 characters.
func TestFoldField(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 90)
	tests := []struct {
		name   string
		tokens []string
		want   string
	}{
		{"short", []string{"a;", "b"}, "N: a; b\r\n"},
		{"folds", []string{strings.Repeat("a", 40), strings.Repeat("b", 40)}, "N: " + strings.Repeat("a", 40) + "\r\n " + strings.Repeat("b", 40) + "\r\n"},
		{"over-long token stays whole", []string{long, "c"}, "N: " + long + "\r\n c\r\n"},
	}
	for _, tt := range tests {
		if got := string(foldField("N", tt.tokens)); got != tt.want {
			t.Errorf("%s: foldField = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestSplitTokens keeps quoted strings whole and joins a lone ";".
func TestSplitTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"mx; spf=none ; dkim=pass header.d=x", []string{"mx;", "spf=none;", "dkim=pass", "header.d=x"}},
		{`mx; dkim=fail reason="a b \" c" header.d=x`, []string{"mx;", "dkim=fail", `reason="a b \" c"`, "header.d=x"}},
	}
	for _, tt := range tests {
		if got := splitTokens(tt.in); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("splitTokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
