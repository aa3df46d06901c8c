package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"50MiB", 50 << 20, false},
		{"64KiB", 64 << 10, false},
		{"1GiB", 1 << 30, false},
		{"10MB", 10_000_000, false},
		{"1024", 1024, false},
		{"12 kB", 12_000, false},
		{"MiB", 0, true},
		{"10 parsecs", 0, true},
		{"-5MiB", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"20m", 20 * time.Minute, false},
		{"24h", 24 * time.Hour, false},
		{"5d", 5 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"30s", 30 * time.Second, false},
		{"five days", 0, true},
		{"d", 0, true},
		{"-1h", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseNextHop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    NextHop
		addr    string
		wantErr bool
	}{
		{in: "smtp:[home.example.com]:10025", want: NextHop{Transport: TransportSMTP, Host: "home.example.com", Port: 10025}, addr: "home.example.com:10025"},
		{in: "smtp:example.com", want: NextHop{Transport: TransportSMTP, Host: "example.com", MX: true}},
		{in: "smtp:Example.COM.", want: NextHop{Transport: TransportSMTP, Host: "example.com", MX: true}},
		{in: "smtps:[smtp.example.net]:465", want: NextHop{Transport: TransportSMTPS, Host: "smtp.example.net", Port: 465}, addr: "smtp.example.net:465"},
		{in: "smtps:[smtp.example.net]", want: NextHop{Transport: TransportSMTPS, Host: "smtp.example.net"}, addr: "smtp.example.net:465"},
		{in: "[relay.example.org]:587", want: NextHop{Transport: TransportSMTP, Host: "relay.example.org", Port: 587}, addr: "relay.example.org:587"},
		{in: "smtp:[127.0.0.1]:2525", want: NextHop{Transport: TransportSMTP, Host: "127.0.0.1", Port: 2525}, addr: "127.0.0.1:2525"},
		{in: "smtp:[::1]:2525", want: NextHop{Transport: TransportSMTP, Host: "::1", Port: 2525}, addr: "[::1]:2525"},
		{in: "smtp:mx.example.com:2525", want: NextHop{Transport: TransportSMTP, Host: "mx.example.com", Port: 2525, MX: true}},
		{in: "lmtp:[host]:24", wantErr: true},
		{in: "smtp:", wantErr: true},
		{in: "smtp:[host.example", wantErr: true},
		{in: "smtp:[host.example]:0", wantErr: true},
		{in: "smtp:[host.example]:99999", wantErr: true},
		{in: "smtp:[host.example]x", wantErr: true},
		{in: "smtp:192.0.2.1", wantErr: true},
		{in: "smtp:[bad host]:25", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseNextHop(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseNextHop(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseNextHop(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if tt.addr != "" && got.Address() != tt.addr {
			t.Errorf("ParseNextHop(%q).Address() = %q, want %q", tt.in, got.Address(), tt.addr)
		}
		again, err := ParseNextHop(got.String())
		if err != nil || again != got {
			t.Errorf("ParseNextHop(%q) does not round-trip through %q: %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

func TestAddressPattern_Match(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		addr    string
		want    bool
	}{
		{"*@example.com", "alice@example.com", true},
		{"*@example.com", "alice@EXAMPLE.com", true},
		{"*@example.com", "alice@sub.example.com", false},
		{"*@example.com", "alice@badexample.com", false},
		{"*@*.example.com", "alice@sub.example.com", true},
		{"*@*.example.com", "alice@a.b.example.com", true},
		{"*@*.example.com", "alice@example.com", false},
		{"*@*.example.com", "alice@evilexample.com", false},
		{"alice@example.com", "Alice@example.com", true},
		{"alice@example.com", "bob@example.com", false},
		{"@example.com", "bob@example.com", true},
		{"*", "anyone@anywhere.example", true},
		{"*@example.com", "no-at-sign", false},
	}
	for _, tt := range tests {
		p, err := ParseAddressPattern(tt.pattern)
		if err != nil {
			t.Fatalf("ParseAddressPattern(%q): %v", tt.pattern, err)
		}
		if got := p.Match(tt.addr); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.addr, got, tt.want)
		}
	}
	for _, bad := range []string{"example.com", "a*b@example.com", "*@", "*@exa mple.com"} {
		if _, err := ParseAddressPattern(bad); err == nil {
			t.Errorf("ParseAddressPattern(%q) succeeded, want an error", bad)
		}
	}
}

// writeConfig writes a config file and the files it names into a temp dir.
func writeConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem", "dkim.private", "users"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "smarthost.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodConfig = `
hostname = "mail.example.org"
state_dir = "state"
trusted_networks = ["127.0.0.0/8", "::1/128", "192.0.2.7"]
relay_domains = ["Example.COM", ".example.net"]
relay_recipients = ["Alice@example.com", "@example.net"]

[tls]
cert_file = "cert.pem"
key_file  = "key.pem"

[[listener]]
name = "submissions"
address = ":465"
tls = "implicit"
role = "submission"

[[listener]]
name = "smtp"
address = ":25"
role = "mx"

[auth]
users_file = "users"
[auth.senders]
alice = ["*@example.com"]

[dkim]
[[dkim.key]]
domain = "example.com"
selector = "default"
private_key = "dkim.private"

[transport]
"Example.com" = "smtp:[home.example.com]:10025"
"*" = "smtp:[127.0.0.1]:2525"

[delivery]
retry = ["1m", "1h"]
max_lifetime = "2d"

[limits]
max_message_size = "10MiB"
`

func TestLoad_GoodConfigGetsDefaultsAndNormalizedValues(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, goodConfig)
	c, warnings, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %v, want none", warnings)
	}
	dir := filepath.Dir(path)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"state_dir resolved", c.StateDir, filepath.Join(dir, "state")},
		{"cert_file resolved", c.TLS.CertFile, filepath.Join(dir, "cert.pem")},
		{"relay domains lower-cased", strings.Join(c.RelayDomains, ","), "example.com,.example.net"},
		{"single host network", c.TrustedNetworks[2].String(), "192.0.2.7/32"},
		{"listener tls default", c.Listeners[1].TLS, TLSStartTLS},
		{"max_failures default", c.Auth.MaxFailures, DefaultMaxFailures},
		{"ban_time default", c.Auth.BanTime.Duration, DefaultBanTime},
		{"dkim sign default", c.DKIM.Keys[0].Sign[0].String(), "*@example.com"},
		{"canonicalization default", c.DKIM.Canonicalization, "relaxed/simple"},
		{"transport key lower-cased", c.Transport["example.com"].Address(), "home.example.com:10025"},
		{"retry from file", len(c.Delivery.Retry), 2},
		{"max_lifetime", c.Delivery.MaxLifetime.Duration, 48 * time.Hour},
		{"max_message_size", c.Limits.MaxMessageSize.Bytes, int64(10 << 20)},
		{"max_recipients default", c.Limits.MaxRecipients, DefaultMaxRecipients},
		{"max_line_length default", c.Limits.MaxLineLength.Bytes, int64(DefaultMaxLineLength)},
		{"delivery tls default", c.Delivery.TLS, DeliveryTLSMay},
		{"relay recipients lower-cased", c.RelayRecipients[0], "alice@example.com"},
		{"spf default", c.Inbound.SPF, CheckTag},
		{"dmarc default", c.Inbound.DMARC, CheckTag},
		{"quarantine header default", c.Inbound.QuarantineHeader, "X-Spam-Flag: YES"},
		{"greylist delay default", c.Inbound.GreylistDelay.Duration, 5 * time.Minute},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestLoad_ReportsEveryProblemWithFileLineAndKey(t *testing.T) {
	t.Parallel()
	src := `hostname = "mail.example.org"
relay_domains = ["exa mple.com"]
colour = "blue"

[tls]
self_signed = true

[[listener]]
name = "sub"
address = ":465"
tls = "implicit"
role = "submission"

[[listener]]
name = "sub"
address = "nowhere"
tls = "sometimes"
role = "smtp"

[auth]
failure_window = "forever"
ban_time = "0s"

[[dkim.key]]
domain = "example.com"
selector = "s1"
private_key = "missing.private"

[transport]
"example.com" = "lmtp:[home]:24"

[delivery]
tls = "always"
retry = ["1m", "soon"]

[limits]
max_message_size = "lots"
max_line_length = "200"

[inbound]
spf = "strict"
quarantine_header = "no colon here"
dnsbl = ["bad zone"]
`
	path := writeConfig(t, src)
	_, _, err := Load(path)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load error = %v, want *config.Error", err)
	}
	want := []string{
		"smarthost.toml:2: relay_domains[0]: ",
		"smarthost.toml:3: colour: unknown key",
		"smarthost.toml:15: listener[1].name: \"sub\" is used twice",
		"smarthost.toml:16: listener[1].address: \"nowhere\" is not host:port",
		"smarthost.toml:17: listener[1].tls: unknown TLS mode \"sometimes\"",
		"smarthost.toml:18: listener[1].role: unknown role \"smtp\"",
		"smarthost.toml:21: auth.failure_window: \"forever\": not a duration",
		"smarthost.toml:22: auth.ban_time: must be longer than zero",
		"smarthost.toml:27: dkim.key[0].private_key: ",
		"smarthost.toml:30: transport.\"example.com\": \"lmtp:[home]:24\": unknown transport",
		"smarthost.toml:33: delivery.tls: unknown policy \"always\"",
		"smarthost.toml:34: delivery.retry[1]: \"soon\"",
		"smarthost.toml:37: limits.max_message_size: \"lots\"",
		"smarthost.toml:38: limits.max_line_length: 200 is below the 1000 octets",
		"smarthost.toml:41: inbound.spf: unknown mode \"strict\"",
		"smarthost.toml:42: inbound.quarantine_header: ",
		"smarthost.toml:43: inbound.dnsbl[0]: ",
	}
	got := cerr.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems do not contain %q; got:\n%s", w, got)
		}
	}
	for _, p := range cerr.Problems {
		if !p.Warning && p.Fix == "" && p.Key != "" {
			t.Errorf("problem %q has no fix", p)
		}
	}
}

func TestLoad_SyntaxErrorCarriesParserPosition(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "hostname = \"mail.example.org\"\n[limits\nmax_recipients = 5\n")
	_, _, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), "smarthost.toml:3: ") {
		t.Errorf("Load error = %v, want the parser's position, line 3", err)
	}
}

func TestLoad_WrongTypeNamesKey(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "hostname = \"mail.example.org\"\n[limits]\nmax_recipients = \"many\"\n")
	_, _, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "max_recipients") {
		t.Errorf("Load error = %v, want it to name max_recipients", err)
	}
}

func TestLoad_WarnsAboutPlaintextOnPublicAddress(t *testing.T) {
	t.Parallel()
	src := `hostname = "mail.example.org"
[[listener]]
name = "test"
address = "0.0.0.0:2525"
tls = "none"
role = "mx"
[[listener]]
name = "loop"
address = "127.0.0.1:2526"
tls = "none"
role = "mx"
`
	_, warnings, err := Load(writeConfig(t, src))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 1 || warnings[0].Key != "listener[0].tls" {
		t.Errorf("warnings = %v, want one for listener[0].tls", warnings)
	}
}

func TestLoad_TLSListenerNeedsCertificate(t *testing.T) {
	t.Parallel()
	src := "hostname = \"mail.example.org\"\n"
	_, _, err := Load(writeConfig(t, src))
	if err == nil || !strings.Contains(err.Error(), "tls: listeners use TLS but no certificate is configured") {
		t.Errorf("Load error = %v, want a missing-certificate problem", err)
	}
}

func TestKeyLines(t *testing.T) {
	t.Parallel()
	src := `a = 1
list = [
  "x",
  "y",
]
text = """
b = 2
"""
[t]
"quoted.key" = 3
[[arr]]
k = 4
[[arr]]
k = 5
[arr.sub]
z = 6
`
	got := keyLines(src)
	want := map[string]int{
		"a": 1, "list": 2, "text": 6, "t": 9, `t."quoted.key"`: 10,
		"arr[0].k": 12, "arr[1].k": 14, "arr[1].sub.z": 16,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("keyLines()[%q] = %d, want %d", k, got[k], n)
		}
	}
	if _, ok := got["b"]; ok {
		t.Errorf("keyLines found key b inside a multi-line string")
	}
}

// TestExampleConfig keeps systemd/smarthost.toml valid: the only problems
// it may have on a build machine are the files it names not existing.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../systemd/smarthost.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Parse("smarthost.toml", string(src))
	var cerr *Error
	if err != nil && !errors.As(err, &cerr) {
		t.Fatalf("Parse: %v", err)
	}
	if cerr == nil {
		return
	}
	for _, p := range cerr.Problems {
		if !strings.Contains(p.Message, "does not exist") {
			t.Errorf("example config problem: %s", p)
		}
	}
}

func TestLoad_WarnsAboutRisksThatStillRun(t *testing.T) {
	t.Parallel()
	src := `hostname = "mail.example.org"
trusted_networks = ["0.0.0.0/0", "192.0.2.0/24"]
relay_domains = ["example.com", "routed.example", "sub.parent.example"]
[[listener]]
name = "loop"
address = "127.0.0.1:2526"
tls = "none"
role = "mx"
[transport]
"routed.example" = "smtp:[home.routed.example]:10025"
".parent.example" = "smtp:[home.parent.example]:10025"
`
	_, warnings, err := Load(writeConfig(t, src))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var keys []string
	for _, w := range warnings {
		keys = append(keys, w.Key)
	}
	want := "trusted_networks[0] relay_domains[0]"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("warnings for %q, want %q:\n%v", got, want, warnings)
	}
}
