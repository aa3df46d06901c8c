package auth

import (
	"testing"

	"smarthost/config"
)

func patterns(t *testing.T, ss ...string) []config.AddressPattern {
	t.Helper()
	var ps []config.AddressPattern
	for _, s := range ss {
		p, err := config.ParseAddressPattern(s)
		if err != nil {
			t.Fatalf("ParseAddressPattern(%q): %v", s, err)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestSenders(t *testing.T) {
	t.Parallel()
	s := NewSenders(map[string][]config.AddressPattern{
		"you":    patterns(t, "*@your-domain.com"),
		"home":   patterns(t, "*@your-domain.com", "*@*.your-domain.com", "postmaster@other.example"),
		"nobody": {},
	})
	tests := []struct {
		name           string
		user, addr     string
		header, envelp bool // Allowed, AllowedMailFrom
	}{
		{"listed user, matching address", "you", "me@your-domain.com", true, true},
		{"matching ignores case", "you", "Me@YOUR-DOMAIN.com", true, true},
		{"listed user, other domain", "you", "me@evil.example", false, false},
		{"listed user, subdomain not in pattern", "you", "me@sub.your-domain.com", false, false},
		{"subdomain pattern", "home", "cron@nas.your-domain.com", true, true},
		{"exact address pattern", "home", "postmaster@other.example", true, true},
		{"exact address pattern, other local part", "home", "root@other.example", false, false},
		{"null sender: allowed in MAIL FROM only", "you", "", false, true},
		{"empty list allows nothing but the null sender", "nobody", "me@your-domain.com", false, false},
		{"empty list, null sender", "nobody", "", false, true},
		{"unlisted user is unrestricted", "alice", "anything@anywhere.example", true, true},
		{"unlisted user, null sender", "alice", "", true, true},
		{"user names are exact", "You", "me@evil.example", true, true},
	}
	for _, tt := range tests {
		if got := s.Allowed(tt.user, tt.addr); got != tt.header {
			t.Errorf("%s: Allowed(%q, %q) = %v, want %v", tt.name, tt.user, tt.addr, got, tt.header)
		}
		if got := s.AllowedMailFrom(tt.user, tt.addr); got != tt.envelp {
			t.Errorf("%s: AllowedMailFrom(%q, %q) = %v, want %v", tt.name, tt.user, tt.addr, got, tt.envelp)
		}
	}
}

func TestSenders_RestrictedAndCopied(t *testing.T) {
	t.Parallel()
	m := map[string][]config.AddressPattern{"you": patterns(t, "*@your-domain.com")}
	s := NewSenders(m)
	m["you"][0] = patterns(t, "*")[0] // changing the config map later has no effect
	m["alice"] = patterns(t, "*@x.example")
	if s.Allowed("you", "me@evil.example") {
		t.Errorf("Senders changed with the map it was made from")
	}
	if !s.Restricted("you") || s.Restricted("alice") {
		t.Errorf("Restricted(you, alice) = %v, %v; want true, false", s.Restricted("you"), s.Restricted("alice"))
	}
}
