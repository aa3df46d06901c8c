package postfix

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"smarthost/config"
)

func TestLogicalLines_JoinsContinuationsSkippingComments(t *testing.T) {
	t.Parallel()
	src := "a = 1\n" +
		"# a comment\n" +
		"b = 2,\n" +
		"    3\n" +
		"  # a comment inside the logical line\n" +
		"\n" +
		"\t4\r\n" +
		"c = x # not a comment\n" +
		"   \n"
	got := logicalLines(src)
	want := []logicalLine{{"a = 1", 1}, {"b = 2, 3 4", 3}, {"c = x # not a comment", 8}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logicalLines = %+v, want %+v", got, want)
	}
}

func TestMainCF_Expand(t *testing.T) {
	t.Parallel()
	m := parseMainCF("main.cf", `
myhostname = mail.$mydomain
mydomain = example.org
a = A
a = AA
empty =
loop1 = $loop2
loop2 = $loop1
unused = 1
`)
	tests := []struct {
		in          string
		want        string
		wantUnknown []string
	}{
		{"$a", "AA", nil}, // the last definition wins
		{"${a}/$(a)", "AA/AA", nil},
		{"$myhostname", "mail.example.org", nil}, // expansion in expansion
		{"$$a", "$a", nil},
		{"${a?yes}", "yes", nil},
		{"${empty?yes}", "", nil},
		{"${empty:no}", "no", nil},
		{"${a:no}", "", nil},
		{"${a?{x, y}}", "x, y", nil},
		{"$config_directory/transport", "/etc/postfix/transport", nil}, // a Postfix default
		{"$undefined_thing", "", []string{"undefined_thing"}},
		{"${broken", "", []string{"${broken (unbalanced)"}},
		{"cost: 5$", "cost: 5$", nil},
	}
	for _, tt := range tests {
		got := m.expandText(tt.in)
		if got.text != tt.want || !reflect.DeepEqual(got.unknown, tt.wantUnknown) {
			t.Errorf("expandText(%q) = %q, unknown %q; want %q, unknown %q", tt.in, got.text, got.unknown, tt.want, tt.wantUnknown)
		}
	}
	if v := m.get("loop1"); len(v.unknown) == 0 {
		t.Errorf("get(loop1) = %q with no unknown names; want the loop reported", v.text)
	}
	if !m.used["mydomain"] || m.used["unused"] {
		t.Errorf("used = %v; want mydomain (which myhostname refers to), not unused", m.used)
	}
}

func TestMainCF_DefaultsFollowCompatibilityLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src       string
		wantStyle string
	}{
		{"", "subnet"}, // no level is level 0
		{"compatibility_level = 1", "subnet"},
		{"compatibility_level = 2", "host"},
		{"compatibility_level = 3.6", "host"},
	}
	for _, tt := range tests {
		if got := parseMainCF("main.cf", tt.src).get("mynetworks_style").text; got != tt.wantStyle {
			t.Errorf("%q: mynetworks_style = %q, want %q", tt.src, got, tt.wantStyle)
		}
	}
	m := parseMainCF("main.cf", "myhostname = mail.example.org")
	if got := m.get("mydestination").text; got != "mail.example.org, localhost.example.org, localhost" {
		t.Errorf("default mydestination = %q", got)
	}
	// Defaults computed from other parameters can loop back: fuzzing
	// found these overflowing the stack.
	for _, src := range []string{"myhostname = mail.$mydomain", "compatibility_level = $relay_domains"} {
		m := parseMainCF("main.cf", src)
		for _, name := range []string{"myhostname", "mydomain", "relay_domains", "mynetworks_style"} {
			m.get(name)
		}
		if v := m.get("myhostname"); strings.HasPrefix(src, "myhostname") && len(v.unknown) == 0 {
			t.Errorf("%q: myhostname = %q with nothing unknown; want the loop reported", src, v.text)
		}
	}
	if v := parseMainCF("main.cf", "").get("mydestination"); !reflect.DeepEqual(v.unknown, []string{"myhostname", "mydomain"}) {
		t.Errorf("mydestination without myhostname: unknown = %q, want [myhostname mydomain]", v.unknown)
	}
}

func TestMainCF_BadLinesAreReported(t *testing.T) {
	t.Parallel()
	m := parseMainCF("/etc/postfix/main.cf", "ok = 1\nnot a parameter\nbad name = 2\n")
	if len(m.bad) != 2 || !strings.HasPrefix(m.bad[0], "main.cf:2: ") || !strings.HasPrefix(m.bad[1], "main.cf:3: ") {
		t.Errorf("bad = %q, want lines 2 and 3", m.bad)
	}
	if m.raw("ok") != "1" {
		t.Errorf("ok = %q, want 1", m.raw("ok"))
	}
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"a, b c,,d\te", []string{"a", "b", "c", "d", "e"}},
		{"inet:localhost:8891, { inet:127.0.0.1:11332, default_action = accept } x",
			[]string{"inet:localhost:8891", "{ inet:127.0.0.1:11332, default_action = accept }", "x"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"192.0.2.0/24", "192.0.2.0/24", false},
		{"[::1]/128", "::1/128", false},
		{"[2001:db8::]/32", "2001:db8::/32", false},
		{"[::1]", "::1/128", false},
		{"192.0.2.7", "192.0.2.7/32", false},
		{"[::ffff:127.0.0.0]/104", "::ffff:127.0.0.0/104", false},
		{"10.1.2.3/8", "", true},             // host bits
		{"!192.0.2.7", "", true},             // exclusion
		{"cidr:/etc/postfix/nets", "", true}, // a table
		{"hash:/etc/postfix/nets", "", true},
		{"fe80::1%eth0", "", true},
		{"[::1", "", true},
		{"mail.example.org", "", true},
	}
	for _, tt := range tests {
		got, err := parseNetwork(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseNetwork(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			var n config.Network
			if n.UnmarshalText([]byte(got)); n.Prefix.String() != got {
				t.Errorf("config does not read %q back: %v", got, n.Prefix)
			}
		}
	}
}

func TestPostfixDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		unit    byte
		want    time.Duration
		wantOut string
	}{
		{"5d", 'd', 5 * 24 * time.Hour, "5d"},
		{"5", 'd', 5 * 24 * time.Hour, "5d"}, // the parameter's default unit
		{"2w", 'd', 14 * 24 * time.Hour, "14d"},
		{"36h", 'd', 36 * time.Hour, "1d12h"},
		{"90s", 's', 90 * time.Second, "1m30s"},
		{"1d12h", 'd', 36 * time.Hour, "1d12h"},
		{"0", 'd', 0, "0s"},
	}
	for _, tt := range tests {
		got, err := postfixDuration(tt.in, tt.unit)
		if err != nil || got != tt.want || formatDuration(got) != tt.wantOut {
			t.Errorf("postfixDuration(%q) = %v (%s), %v; want %v (%s)", tt.in, got, formatDuration(got), err, tt.want, tt.wantOut)
		}
		if back, err := config.ParseDuration(formatDuration(got)); err != nil || back != got {
			t.Errorf("config.ParseDuration(%q) = %v, %v; want %v", formatDuration(got), back, err, got)
		}
	}
	for _, bad := range []string{"", "5x", "d", "99999999999w", "5 d"} {
		if d, err := postfixDuration(bad, 'd'); err == nil {
			t.Errorf("postfixDuration(%q) = %v, want an error", bad, d)
		}
	}
}

func TestFormatSize_ConfigReadsItBack(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{10240000, 52428800, 1 << 30, 1536, 1000} {
		s := formatSize(n)
		if back, err := config.ParseSize(s); err != nil || back != n {
			t.Errorf("config.ParseSize(formatSize(%d) = %q) = %d, %v", n, s, back, err)
		}
	}
	if got := formatSize(52428800); got != "50MiB" {
		t.Errorf("formatSize(52428800) = %q, want 50MiB", got)
	}
}

// Each level doubles the value; fuzzing stalled on inputs like this before
// expansions were remembered and bounded.
func TestMainCF_DoublingExpansionIsBounded(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	src.WriteString("p0 = xxxxxxxx\n")
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&src, "p%d = $p%d$p%d\n", i, i-1, i-1)
	}
	m := parseMainCF("main.cf", src.String())
	if v := m.get("p200"); v.text != "" || !reflect.DeepEqual(v.unknown, []string{"(a value longer than 64 KiB)"}) {
		t.Errorf("get(p200) = %d bytes, unknown %q; want nothing and the length reported", len(v.text), v.unknown)
	}
	if v := m.get("p10"); len(v.text) != 8<<10 || len(v.unknown) != 0 {
		t.Errorf("get(p10) = %d bytes, unknown %q; want 8 KiB", len(v.text), v.unknown)
	}
}
