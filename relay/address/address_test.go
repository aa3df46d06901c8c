package address

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Address
		wantErr error
	}{
		{in: "alice@example.com", want: Address{"alice", "example.com"}},
		{in: "Alice@EXAMPLE.Com", want: Address{"Alice", "example.com"}},
		{in: "user@[192.0.2.1]", want: Address{"user", "[192.0.2.1]"}},
		{in: "user@[IPv6:2001:db8::1]", want: Address{"user", "[ipv6:2001:db8::1]"}},
		{in: "user@evil.example@example.com", want: Address{"user@evil.example", "example.com"}},
		{in: "用户@例子.测试", want: Address{"用户", "例子.测试"}},
		{in: "user@example.com.", wantErr: ErrSyntax},
		{in: "user@.example.com", wantErr: ErrSyntax},
		{in: "user@-example.com", wantErr: ErrSyntax},
		{in: "user@exa mple.com", wantErr: ErrSyntax},
		{in: "user@", wantErr: ErrSyntax},
		{in: "@example.com", wantErr: ErrSyntax},
		{in: "no-domain", wantErr: ErrSyntax},
		{in: "user\x00@example.com", wantErr: ErrSyntax},
		{in: "us\rer@example.com", wantErr: ErrSyntax},
		{in: "user@[999.0.0.1]", wantErr: ErrSyntax},
		{in: "user@[192.0.2.1", wantErr: ErrSyntax},
		{in: "\xff@example.com", wantErr: ErrSyntax},
		{in: strings.Repeat("a", 65) + "@example.com", wantErr: ErrTooLong},
		{in: "a@" + strings.Repeat("b", 300), wantErr: ErrTooLong},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("Parse(%q) = %#v, %v; want %#v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAddress_Tricks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		routing bool
		literal bool
		ascii   bool
	}{
		{"user@example.com", false, false, true},
		{"user%other.example@example.com", true, false, true},
		{"other.example!user@example.com", true, false, true},
		{"user@other.example@example.com", true, false, true},
		{"user@[192.0.2.1]", false, true, true},
		{"ünïcode@example.com", false, false, false},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if a.HasRouting() != tt.routing || a.IsLiteral() != tt.literal || a.IsASCII() != tt.ascii {
			t.Errorf("Parse(%q): routing %v literal %v ascii %v; want %v %v %v",
				tt.in, a.HasRouting(), a.IsLiteral(), a.IsASCII(), tt.routing, tt.literal, tt.ascii)
		}
	}
}

func TestAddress_StringQuotesWhenNeeded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    Address
		want string
	}{
		{Address{"alice", "example.com"}, "alice@example.com"},
		{Address{"first.last+tag", "example.com"}, "first.last+tag@example.com"},
		{Address{"a b", "example.com"}, `"a b"@example.com`},
		{Address{`say"hi\`, "example.com"}, `"say\"hi\\"@example.com`},
		{Address{"user@other", "example.com"}, `"user@other"@example.com`},
		{Address{"dot.", "example.com"}, `"dot."@example.com`},
		{Address{}, ""},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// FuzzParse checks that a parsed address is stable (parsing its parts again
// gives the same value) and that its wire form is bounded and cannot break
// an SMTP command line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a@b.c", "user%x@y.z", `"a b"@c.d`, "u@[1.2.3.4]", "x@y.", "用户@例子.测试"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(a.Local + "@" + a.Domain)
		if err != nil || again != a {
			t.Fatalf("Parse(%q) = %#v, but its parts re-parse to %#v, %v", s, a, again, err)
		}
		w := a.String()
		if len(w) > 2*MaxPath+2 {
			t.Fatalf("String() of %q is %d bytes", s, len(w))
		}
		if strings.ContainsAny(w, "\r\n\x00") {
			t.Fatalf("String() of %q = %q contains a line break or NUL", s, w)
		}
	})
}
