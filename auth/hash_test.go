package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// referenceArgon2id is the argon2id vector of the reference implementation
// (phc-winner-argon2, src/test.c): password "password", salt "somesalt".
const referenceArgon2id = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

// referenceBcrypt is OpenBSD's and crypt_blowfish's vector for "U*U".
const referenceBcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

func bcryptHashOf(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseHash_AcceptsSupportedFormats(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery staple"
	ours := HashPassword(pw)
	b := bcryptHashOf(t, pw) // x/crypto writes $2a$
	long := strings.Repeat("x", 72)
	tests := []struct {
		name     string
		stored   string
		password string
		scheme   string
	}{
		{"argon2id from HashPassword", ours, pw, "argon2id m=12288,t=3,p=1"},
		{"argon2id reference vector", referenceArgon2id, "password", "argon2id m=65536,t=2,p=1"},
		{"Dovecot {ARGON2ID}", "{ARGON2ID}" + referenceArgon2id, "password", "argon2id m=65536,t=2,p=1"},
		{"Dovecot {argon2id} in lower case", "{argon2id}" + ours, pw, "argon2id m=12288,t=3,p=1"},
		{"bcrypt $2a$ reference vector", referenceBcrypt, "U*U", "bcrypt cost=5"},
		{"bcrypt $2a$ from x/crypto", b, pw, "bcrypt cost=4"},
		{"bcrypt $2b$", "$2b$" + b[4:], pw, "bcrypt cost=4"},
		{"bcrypt $2y$ (Dovecot, PHP)", "$2y$" + b[4:], pw, "bcrypt cost=4"},
		{"Dovecot {BLF-CRYPT}", "{BLF-CRYPT}$2y$" + b[4:], pw, "bcrypt cost=4"},
		{"Dovecot {CRYPT} holding bcrypt", "{CRYPT}$2b$" + b[4:], pw, "bcrypt cost=4"},
		{"bcrypt reads 72 bytes, as every implementation", bcryptHashOf(t, long), long + "ignored", "bcrypt cost=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := parseHash(tt.stored)
			if err != nil {
				t.Fatalf("parseHash(%q) error: %v", tt.stored, err)
			}
			if got := h.String(); got != tt.scheme {
				t.Errorf("String() = %q, want %q", got, tt.scheme)
			}
			if !h.match([]byte(tt.password)) {
				t.Errorf("match(%q) = false, want true", tt.password)
			}
			if h.match([]byte("wrong" + tt.password)) {
				t.Errorf("match(wrong password) = true, want false")
			}
		})
	}
}

func TestParseHash_RejectsBadHashes(t *testing.T) {
	t.Parallel()
	const salt, key = "c29tZXNhbHQ", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	tests := []struct {
		name    string
		stored  string
		wantErr string
	}{
		{"empty", "", "unknown hash format"},
		{"plaintext", "secret", "unknown hash format"},
		{"argon2i", "$argon2i$v=19$m=65536,t=2,p=1$" + salt + "$" + key, "only argon2id"},
		{"argon2 version 1.0", "$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + key, "version"},
		{"no version field", "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key, "bad argon2id hash"},
		{"parameters out of order", "$argon2id$v=19$t=2,m=65536,p=1$" + salt + "$" + key, "parameters"},
		{"missing parameter", "$argon2id$v=19$m=65536,t=2$" + salt + "$" + key, "parameters"},
		{"memory too large", "$argon2id$v=19$m=1048576,t=2,p=1$" + salt + "$" + key, "m=1048576 out of range"},
		{"memory below 8p", "$argon2id$v=19$m=8,t=2,p=2$" + salt + "$" + key, "m=8 out of range"},
		{"zero passes", "$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + key, "t=0 out of range"},
		{"zero lanes", "$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + key, "p=0 out of range"},
		{"short salt", "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$" + key, "salt"},
		{"hash not base64", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$!!!!", "hash is not base64"},
		{"short hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$c2FsdA", "hash is not base64"},
		{"bcrypt $2x$ (buggy crypt_blowfish)", "$2x$" + referenceBcrypt[4:], "unknown hash format"},
		{"bcrypt truncated", "$2a$05$CCCC", "bad bcrypt hash"},
		{"Dovecot SHA512-CRYPT", "{SHA512-CRYPT}$6$salt$hash", "unsupported scheme {SHA512-CRYPT}"},
		{"Dovecot PLAIN", "{PLAIN}secret", "unsupported scheme {PLAIN}"},
		{"scheme and hash disagree", "{BLF-CRYPT}" + referenceArgon2id, "unsupported scheme {BLF-CRYPT}"},
		{"unclosed scheme", "{ARGON2ID" + referenceArgon2id, "without '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := parseHash(tt.stored)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseHash(%q) = %v, %v; want error containing %q", tt.stored, h, err, tt.wantErr)
			}
		})
	}
}

func TestHashPassword_SaltsEachHash(t *testing.T) {
	t.Parallel()
	a, b := HashPassword("pw"), HashPassword("pw")
	if a == b {
		t.Errorf("HashPassword gave %q twice; want a fresh salt each time", a)
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=12288,t=3,p=1$") {
		t.Errorf("HashPassword = %q, want the default argon2id parameters", a)
	}
}

func TestDummyHash_MatchesNothingAndCostsLikeANewHash(t *testing.T) {
	t.Parallel()
	d := dummyHash()
	for _, pw := range []string{"", "password", "pw"} {
		if d.match([]byte(pw)) {
			t.Errorf("dummy.match(%q) = true, want false", pw)
		}
	}
	// Same parameters as HashPassword, so an unknown user takes as long
	// as a user with a fresh hash.
	h, err := parseHash(HashPassword("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), h.String(); got != want {
		t.Errorf("dummy parameters %q, want %q (those of HashPassword)", got, want)
	}
}
