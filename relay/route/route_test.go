package route

import (
	"testing"

	"smarthost/config"
	"smarthost/relay/resolve/resolvetest"
)

func mustHop(t *testing.T, s string) config.NextHop {
	t.Helper()
	h, err := config.ParseNextHop(s)
	if err != nil {
		t.Fatalf("ParseNextHop(%q): %v", s, err)
	}
	return h
}

func testConfig(t *testing.T, transport map[string]string, relayhost string, relayDomains ...string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Hostname = "relay.example.test"
	cfg.RelayDomains = relayDomains
	cfg.Transport = map[string]config.NextHop{}
	for k, v := range transport {
		cfg.Transport[k] = mustHop(t, v)
	}
	if relayhost != "" {
		cfg.Delivery.Relayhost = mustHop(t, relayhost)
	}
	return cfg
}

func TestRoute_TransportOrderThenRelayhostThenMX(t *testing.T) {
	t.Parallel()
	transport := map[string]string{
		"alice@example.test": "smtp:[alice-host.example.test]:2525",
		"example.test":       "smtp:[home.example.test]:10025",
		".example.test":      "smtp:[sub.example.test]",
		".deep.example.test": "smtp:deep-mx.example.test",
		"example.org":        "smtps:[smtp.example.org]:465",
	}
	tests := []struct {
		name      string
		transport map[string]string
		relayhost string
		rcpt      string
		want      string
	}{
		{"full address wins over domain", transport, "", "alice@example.test", "smtp:[alice-host.example.test]:2525"},
		{"address match ignores case", transport, "", "Alice@Example.TEST", "smtp:[alice-host.example.test]:2525"},
		{"domain", transport, "", "bob@example.test", "smtp:[home.example.test]:10025"},
		{"parent key matches a subdomain", transport, "", "bob@a.example.test", "smtp:[sub.example.test]"},
		{"closest parent wins", transport, "", "bob@x.deep.example.test", "smtp:deep-mx.example.test"},
		{"dot key does not match the domain itself", map[string]string{".example.test": "smtp:[sub.example.test]"}, "", "bob@example.test", "smtp:example.test"},
		{"domain key does not match subdomains", map[string]string{"example.test": "smtp:[home.example.test]"}, "", "bob@a.example.test", "smtp:a.example.test"},
		{"smtps transport", transport, "", "carol@example.org", "smtps:[smtp.example.org]:465"},
		{"star before relayhost", map[string]string{"*": "smtp:[sink.example.test]:2525"}, "smtps:[upstream.example.net]:465", "x@other.example", "smtp:[sink.example.test]:2525"},
		{"relayhost when no entry", transport, "smtps:[upstream.example.net]:465", "x@other.example", "smtps:[upstream.example.net]:465"},
		{"transport entry before relayhost", transport, "smtps:[upstream.example.net]:465", "bob@example.test", "smtp:[home.example.test]:10025"},
		{"MX lookup of the recipient domain", nil, "", "x@Other.Example", "smtp:other.example"},
		{"trailing dot ignored", nil, "", "x@other.example.", "smtp:other.example"},
		{"address literal goes to the address", nil, "", "x@[192.0.2.7]", "smtp:[192.0.2.7]"},
		{"IPv6 literal", nil, "", "x@[IPv6:2001:db8::7]", "smtp:[2001:db8::7]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(testConfig(t, tt.transport, tt.relayhost), &resolvetest.Resolver{})
			if got := r.Route(tt.rcpt).String(); got != tt.want {
				t.Errorf("Route(%q) = %q, want %q", tt.rcpt, got, tt.want)
			}
		})
	}
}

func TestRoute_NoDomainGivesEmptyHost(t *testing.T) {
	t.Parallel()
	r := New(testConfig(t, nil, ""), &resolvetest.Resolver{})
	got := r.Route("postmaster")
	if got.Host != "" || !got.MX {
		t.Errorf("Route(%q) = %+v, want an MX next hop with no host", "postmaster", got)
	}
}

func TestIsRelayDestination(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, map[string]string{
		"*":                  "smtp:[sink.example.test]",
		"home.example.test":  "smtp:[home.example.test]:10025",
		".sub.example.test":  "smtp:[home.example.test]:10025",
		"user@mydomain.test": "smtp:[home.example.test]:10025",
	}, "", "example.com", ".parent.example.com")
	r := New(cfg, &resolvetest.Resolver{})
	tests := []struct {
		addr string
		want bool
	}{
		{"a@example.com", true},
		{"a@EXAMPLE.com", true},
		{"a@example.com.", true},
		{"a@sub.example.com", false},      // "example.com" matches only itself
		{"a@x.parent.example.com", true},  // ".parent.example.com" matches subdomains
		{"a@parent.example.com", false},   // …but not the domain itself
		{"a@evilexample.com", false},      // suffix match is on a label boundary
		{"a@home.example.test", true},     // transport domain entry
		{"a@x.sub.example.test", true},    // transport parent entry
		{"user@mydomain.test", true},      // transport address entry
		{"User@MyDomain.test", true},      // …case-insensitively
		{"other@mydomain.test", false},    // an address entry covers only that address
		{"a@anything.example.net", false}, // "*" never makes a relay destination
		{"a@[127.0.0.1]", false},          // address literals never
		{"no-domain", false},
	}
	for _, tt := range tests {
		if got := r.IsRelayDestination(tt.addr); got != tt.want {
			t.Errorf("IsRelayDestination(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
