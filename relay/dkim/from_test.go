package dkim

import (
	"errors"
	"testing"
)

func TestParseFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr error
	}{
		{"bare address", lines("From: alice@example.test", "To: b@example.invalid", ""), "alice@example.test", nil},
		{"display name", lines(`From: "Alice A." <alice@example.test>`, ""), "alice@example.test", nil},
		{"comment", lines("From: alice@example.test (Alice)", ""), "alice@example.test", nil},
		{"folded", lines("From: Alice", "\t<alice@example.test>", ""), "alice@example.test", nil},
		{"folded with LF line ends", "From: Alice\n <alice@example.test>\n\n", "alice@example.test", nil},
		{"name case and space before colon", lines("fROM : alice@example.test", ""), "alice@example.test", nil},
		{"UTF-8 encoded word", lines("From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>", ""), "joerg@example.test", nil},
		{"base64 encoded word folded", lines("From: =?UTF-8?B?SsO2cmc=?=", " =?UTF-8?B?IE3DvGxsZXI=?= <joerg@example.test>", ""), "joerg@example.test", nil},
		{"unknown charset in encoded word", lines("From: =?koi8-r?B?8NLJ18XU?= <ivan@example.test>", ""), "ivan@example.test", nil},
		{"malformed encoded word is just text", lines("From: =?utf-8?q?broken <b@example.test>", ""), "b@example.test", nil},
		{"raw UTF-8 (RFC 6532)", lines("From: Jörg <jörg@exämple.test>", ""), "jörg@exämple.test", nil},
		{"quoted local part comes back unquoted", lines(`From: "a b"@example.test`, ""), "a b@example.test", nil},
		{"only the header section counts", lines("Subject: x", "", "From: body@example.test"), "", ErrNoFrom},

		{"none", lines("Subject: no from", ""), "", ErrNoFrom},
		{"empty header", "\r\n", "", ErrNoFrom},
		{"Resent-From is not From", lines("Resent-From: a@example.test", ""), "", ErrNoFrom},
		{"two", lines("From: a@example.test", "From: b@example.test", ""), "", ErrMultipleFrom},
		{"two, different case", lines("From: a@example.test", "FROM: a@example.test", ""), "", ErrMultipleFrom},
		{"two addresses in one", lines("From: a@example.test, b@example.test", ""), "", ErrBadFrom},
		{"group", lines("From: Team: a@example.test;", ""), "", ErrBadFrom},
		{"empty group", lines("From: undisclosed-recipients:;", ""), "", ErrBadFrom},
		{"group, folded", lines("From: Team:", " a@example.test, b@example.test;", ""), "", ErrBadFrom},
		{"no domain", lines("From: root", ""), "", ErrBadFrom},
		{"empty", lines("From:", ""), "", ErrBadFrom},
		{"null address", lines("From: <>", ""), "", ErrBadFrom},
		{"unclosed angle", lines("From: Alice <alice@example.test", ""), "", ErrBadFrom},
		{"address literal", lines("From: a@[192.0.2.1]", ""), "", ErrBadFrom},
		{"raw Latin-1", "From: J\xf6rg <j@example.test>\r\n\r\n", "", ErrBadFrom},
	}
	for _, tt := range tests {
		got, err := ParseFrom([]byte(tt.header))
		if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("ParseFrom(%q) (%s) = %q, %v; want %q, %v", tt.header, tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHasGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  bool
	}{
		{"Team: a@example.test;", true},
		{`"Team: not a group" <a@example.test>`, false},
		{"a@example.test (note: a comment)", false},
		{"a@example.test (nested (comment: x))", false},
		{`"escaped \" quote: x" <a@example.test>`, false},
		{"<@route.example:a@example.test>", false},
		{"a@[IPv6:2001:db8::1]", false},
		{"a@example.test (unclosed: comment", false},
		{"x (c) : a@example.test;", true},
	}
	for _, tt := range tests {
		if got := hasGroup(tt.value); got != tt.want {
			t.Errorf("hasGroup(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}
