package postfix

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"smarthost/config"
)

func TestMasterCF_ServicesAndOverrides(t *testing.T) {
	t.Parallel()
	src := "smtps inet n - y - - smtpd\n" +
		"  -o smtpd_tls_wrappermode=yes\n" +
		"# comment between\n" +
		"  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n" +
		"  -osyslog_name=postfix/smtps\n" +
		"too short\n"
	services, bad := parseMasterCF("master.cf", src)
	if len(services) != 1 || len(bad) != 1 || !strings.HasPrefix(bad[0], "master.cf:6: ") {
		t.Fatalf("parseMasterCF = %+v, bad %q; want one service and line 6 bad", services, bad)
	}
	want := map[string]string{
		"smtpd_tls_wrappermode":     "yes",
		"smtpd_client_restrictions": "permit_sasl_authenticated, reject",
		"syslog_name":               "postfix/smtps",
	}
	s := services[0]
	if s.name != "smtps" || s.typ != "inet" || s.command != "smtpd" || !reflect.DeepEqual(s.overrides, want) {
		t.Errorf("service = %+v, want smtps inet smtpd with overrides %v", s, want)
	}
}

func TestListenAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		wantHost string
		wantPort int
		wantOK   bool
	}{
		{"smtp", "", 25, true},
		{"submission", "", 587, true},
		{"submissions", "", 465, true},
		{"smtps", "", 465, true},
		{"127.0.0.1:submission", "127.0.0.1", 587, true},
		{"[::1]:25", "::1", 25, true},
		{"10025", "", 10025, true},
		{"amavisfeed", "", 0, false},
	}
	for _, tt := range tests {
		a, ok := listenAddress(tt.in)
		if a.host != tt.wantHost || a.port != tt.wantPort || ok != tt.wantOK {
			t.Errorf("listenAddress(%q) = %q, %d, %v; want %q, %d, %v", tt.in, a.host, a.port, ok, tt.wantHost, tt.wantPort, tt.wantOK)
		}
	}
}

func TestReadTable(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/postfix/transport", "# comment\nExample.COM smtp:[home.example.com]:10025\n  # inside\nlong.example  smtp:[a.example]:25,\n   [b.example]:25\nexample.com smtp:[again.example]\nnovalue\n")
	write("etc/postfix/compiled.db", "")
	r := reader{root: root}

	tab, err := r.readTable(tableRef{typ: "hash", name: "/etc/postfix/transport"})
	if err != nil {
		t.Fatal(err)
	}
	want := []tableEntry{
		{"example.com", "smtp:[home.example.com]:10025", 2},
		{"long.example", "smtp:[a.example]:25, [b.example]:25", 4},
	}
	if !reflect.DeepEqual(tab.entries, want) || len(tab.problems) != 2 {
		t.Errorf("entries = %+v, problems %q; want %+v and the repeated key and the line without value", tab.entries, tab.problems, want)
	}
	if tab.where(tab.entries[1]) != "/etc/postfix/transport:4" {
		t.Errorf("where = %q, want the path on the imported machine", tab.where(tab.entries[1]))
	}

	inline, err := r.readTable(tableRef{typ: "inline", name: "{ a.example=OK, { b.example = smtp:[x.example] } }"})
	if err != nil || len(inline.entries) != 2 || inline.entries[1].value != "smtp:[x.example]" {
		t.Errorf("inline table = %+v, %v", inline, err)
	}

	for _, tt := range []struct {
		ref     string
		wantErr string
	}{
		{"hash:/etc/postfix/compiled", "only the compiled /etc/postfix/compiled.db"},
		{"hash:/etc/postfix/missing", "/etc/postfix/missing: no such file"},
		{"pcre:/etc/postfix/x.pcre", "regular expressions"},
		{"mysql:/etc/postfix/mysql.cf", "outside the file system"},
		{"cidr:/etc/postfix/nets", "cidr"},
	} {
		ref, ok := parseTableRef(tt.ref)
		if !ok {
			t.Fatalf("parseTableRef(%q) failed", tt.ref)
		}
		_, err := r.readTable(ref)
		if !errors.Is(err, errNotTranslatable) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("readTable(%s) = %v, want %q", tt.ref, err, tt.wantErr)
		}
	}
}

func TestParseTableRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		wantType string
		wantName string
		wantOK   bool
	}{
		{"hash:/etc/postfix/transport", "hash", "/etc/postfix/transport", true},
		{"proxy:hash:/etc/postfix/transport", "hash", "/etc/postfix/transport", true},
		{"texthash:/etc/postfix/x", "texthash", "/etc/postfix/x", true},
		{"example.com", "", "", false},
		{"[::1]/128", "", "", false},
		{"/etc/postfix/file", "", "", false},
		{"2001:db8::/32", "", "", false},
	}
	for _, tt := range tests {
		ref, ok := parseTableRef(tt.in)
		if ref.typ != tt.wantType || ref.name != tt.wantName || ok != tt.wantOK {
			t.Errorf("parseTableRef(%q) = %+v, %v; want %s:%s, %v", tt.in, ref, ok, tt.wantType, tt.wantName, tt.wantOK)
		}
	}
}

func TestSigningTablePatterns(t *testing.T) {
	t.Parallel()
	plain := []struct {
		key     string
		want    string // "" when not translatable
		wantErr bool
	}{
		{"user@example.com", "user@example.com", false},
		{"example.com", "*@example.com", false},
		{".example.com", "*@*.example.com", false},
		{"user@.example.com", "user@*.example.com", false},
		{"user@*", "user@*", false},
		{"*", "*", false},
		{"*@example.com", "", true}, // looked up literally: never matches
	}
	for _, tt := range plain {
		rp, err := plainPattern(tt.key)
		if (err != nil) != tt.wantErr || err == nil && rp.pattern.String() != tt.want {
			t.Errorf("plainPattern(%q) = %q, %v; want %q, error %v", tt.key, rp.pattern, err, tt.want, tt.wantErr)
		}
	}
	// OpenDKIM looks up user@host, host, user@.parent, .parent, user@*, *.
	order := []string{"a@b.example.com", "b.example.com", "a@.b.example.com", "a@.example.com", ".b.example.com", ".example.com", "a@*", "*"}
	for i := 1; i < len(order); i++ {
		r1, _ := plainPattern(order[i-1])
		r2, _ := plainPattern(order[i])
		if r1.rank >= r2.rank {
			t.Errorf("rank(%q) = %d is not before rank(%q) = %d", order[i-1], r1.rank, order[i], r2.rank)
		}
	}
	refile := []struct {
		key     string
		want    string
		wantErr bool
	}{
		{"*@example.com", "*@example.com", false},
		{"*@*.example.com", "*@*.example.com", false},
		{"*", "*", false},
		{"sales@example.com", "sales@example.com", false},
		{"*-bounces@example.com", "", true},
		{"*example.com", "", true},
		{"@example.com", "", true},
	}
	for _, tt := range refile {
		p, err := refilePattern(tt.key)
		if (err != nil) != tt.wantErr || err == nil && p.String() != tt.want {
			t.Errorf("refilePattern(%q) = %q, %v; want %q, error %v", tt.key, p, err, tt.want, tt.wantErr)
		}
	}
}

func TestOverlap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"*", "sales@example.net", true},
		{"*@example.com", "*@example.net", false},
		{"*@*.example.com", "*@mail.example.com", true},
		{"*@*.example.com", "*@example.com", false},
		{"*@*.example.com", "*@*.sub.example.com", true},
		{"a@example.com", "b@example.com", false},
		{"a@*", "*@example.com", true},
	}
	for _, tt := range tests {
		a, _ := config.ParseAddressPattern(tt.a)
		b, _ := config.ParseAddressPattern(tt.b)
		if got := overlap(a, b); got != tt.want || overlap(b, a) != tt.want {
			t.Errorf("overlap(%s, %s) = %v, want %v both ways", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMilterKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		milter, socket, want string
	}{
		{"inet:localhost:8891", "", "opendkim"},
		{"inet:127.0.0.1:12301", "inet:12301@localhost", "opendkim"},
		{"inet:127.0.0.1:8891", "inet:12301@localhost", ""}, // OpenDKIM is elsewhere
		{"unix:/opendkim/opendkim.sock", "local:/var/spool/postfix/opendkim/opendkim.sock", "opendkim"},
		{"local:/run/opendkim/opendkim.sock", "", "opendkim"},
		{"{ inet:localhost:8891, default_action=accept }", "", "opendkim"},
		{"inet:localhost:8893", "", "opendmarc"},
		{"unix:/opendmarc/opendmarc.sock", "", "opendmarc"},
		{"inet:localhost:11332", "", ""},
	}
	for _, tt := range tests {
		if got := milterKind(tt.milter, tt.socket); got != tt.want {
			t.Errorf("milterKind(%q, socket %q) = %q, want %q", tt.milter, tt.socket, got, tt.want)
		}
	}
}

func TestNextHop(t *testing.T) {
	t.Parallel()
	services, _ := parseMasterCF("master.cf", "smtp unix - - y - - smtp\n"+
		"home unix - - y - - smtp\n  -o smtp_tls_wrappermode=yes\n"+
		"slow unix - - y - - smtp\n  -o smtp_connect_timeout=5s\n"+
		"dovecot unix - n n - - pipe\n")
	im := &importer{main: parseMainCF("main.cf", ""), services: services}
	tests := []struct {
		result    string
		fallback  string // for an empty transport field
		want      string
		wantNotes int
		wantErr   string
	}{
		{"smtp:[home.example.com]:10025", "smtp", "smtp:[home.example.com]:10025", 0, ""},
		{"relay:[home.example.com]:10025", "smtp", "smtp:[home.example.com]:10025", 0, ""}, // relay is smtp
		{"smtp:mx.example.net", "smtp", "smtp:mx.example.net", 0, ""},
		{"home:[home.example.com]:465", "smtp", "smtps:[home.example.com]:465", 0, ""},
		{":[home.example.com]:465", "home", "smtps:[home.example.com]:465", 0, ""}, // empty: the fallback
		{"slow:[x.example.com]", "smtp", "smtp:[x.example.com]", 1, ""},
		{"smtp:[a.example]:25, [b.example]:25", "smtp", "smtp:[a.example]:25", 1, ""},
		{"smtp:", "smtp", "", 0, "no next hop"},
		{"lmtp:unix:private/dovecot-lmtp", "smtp", "", 0, "LMTP"},
		{"error:5.1.1 gone", "smtp", "", 0, "refused with an error"},
		{"dovecot:", "smtp", "", 0, "program"},
		{"nosuch:[x.example]", "smtp", "", 0, `no transport "nosuch"`},
		{"smtp:[bad!host]", "smtp", "", 0, "bad host name"},
	}
	for _, tt := range tests {
		th, err := im.nextHop(tt.result, tt.fallback)
		got, notes := th.hop, th.notes
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		if got != tt.want || len(notes) != tt.wantNotes || (tt.wantErr == "") != (err == nil) || !strings.Contains(errText, tt.wantErr) {
			t.Errorf("nextHop(%q) = %q, notes %q, %v; want %q, %d notes, error %q", tt.result, got, notes, err, tt.want, tt.wantNotes, tt.wantErr)
		}
	}
}

func TestQuote_RoundTripsThroughTOML(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", `with "quotes" and \backslash`, "tab\tnew\nline\rnul\x00del\x7f", "ünïcödé", "bad\xffutf8"} {
		var v struct{ V string }
		if _, err := toml.Decode("v = "+quote(s), &v); err != nil {
			t.Errorf("toml.Decode(v = %s): %v", quote(s), err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); v.V != want {
			t.Errorf("quote(%q) decodes to %q, want %q", s, v.V, want)
		}
	}
}

// Text from the imported files lands in comments; a line break in it must
// not end the comment and turn the rest into TOML.
func TestWriteComments_StayComments(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	writeComments(&b, []string{"evil\nhostname = \"x\"", "cr\rnul\x00", strings.Repeat("long words ", 30), "bad\xff"})
	var v map[string]any
	if _, err := toml.Decode(b.String(), &v); err != nil || len(v) != 0 {
		t.Errorf("comments %q decode to %v, %v; want nothing", b.String(), v, err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, "#") || len([]rune(line)) > commentWidth {
			t.Errorf("comment line %q: not a comment or longer than %d", line, commentWidth)
		}
	}
}

// transport(5): an entry with an empty transport field goes by
// relay_transport when its domain is a relay domain (a subdomain counts,
// as parent_domain_matches_subdomains says by default) and by
// default_transport otherwise.
func TestTransport_EmptyFieldUsesRelayOrDefaultTransport(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "postfix"), 0o755); err != nil {
		t.Fatal(err)
	}
	table := "example.com :[home.example.com]:465\nsub.example.com :[home.example.com]:465\nexample.org :[out.example.org]:465\n"
	if err := os.WriteFile(filepath.Join(root, "etc", "postfix", "transport"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	services, _ := parseMasterCF("master.cf", "home unix - - y - - smtp\n  -o smtp_tls_wrappermode=yes\nsmtp unix - - y - - smtp\n")
	im := &importer{
		r:        reader{root: root},
		main:     parseMainCF("main.cf", "relay_transport = home\ntransport_maps = hash:/etc/postfix/transport\n"),
		services: services,
		handled:  map[string]bool{},
	}
	im.transport([]string{"example.com"})
	got := map[string]string{}
	for _, e := range im.doc.transport.entries {
		if e.key != "" {
			got[e.key] = e.value
		}
	}
	want := map[string]string{
		`"example.com"`:     `"smtps:[home.example.com]:465"`,
		`"sub.example.com"`: `"smtps:[home.example.com]:465"`,
		`"example.org"`:     `"smtp:[out.example.org]:465"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("[transport] = %v, want %v", got, want)
	}
}

func TestLimits_SmallMessageSizeLimitsLinesToo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit    string
		wantKeys []string // keys set in [limits]
	}{
		{"52428800", []string{"max_message_size"}},
		{"20000", []string{"max_message_size", "max_line_length"}},
		{"999", nil}, // below one line: not translated
		{"0", nil},   // no limit in Postfix
	}
	for _, tt := range tests {
		im := &importer{main: parseMainCF("main.cf", "message_size_limit = "+tt.limit), handled: map[string]bool{}}
		im.limits()
		var keys []string
		for _, e := range im.doc.limits.entries {
			if e.key != "" {
				keys = append(keys, e.key)
			}
		}
		if !reflect.DeepEqual(keys, tt.wantKeys) || (tt.wantKeys == nil) != (len(im.notTranslated) == 1) {
			t.Errorf("message_size_limit = %s: keys %q, not translated %q; want keys %q", tt.limit, keys, im.notTranslated, tt.wantKeys)
		}
		text := "hostname = \"mail.example.org\"\n[tls]\nself_signed = true\n"
		var b strings.Builder
		im.doc.limits.write(&b)
		for _, p := range parseProblems(t, "smarthost.toml", text+b.String()) {
			if !p.Warning {
				t.Errorf("message_size_limit = %s: config.Parse: %s", tt.limit, p)
			}
		}
	}
}

// tables yields the readable tables a parameter lists, in order, and
// notes every item that is not a lookup table or cannot be read, naming
// the parameter.
func TestImporterTables_YieldsReadableAndNotesTheRest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := filepath.Join(root, "etc/postfix/transport")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("example.com smtp:[home.example.com]:10025\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	im := &importer{r: reader{root: root}}
	var notes, got []string
	refs := []string{"not-a-table", "hash:/etc/postfix/missing", "hash:/etc/postfix/transport", "inline:{ a.example=b }"}
	for tab := range im.tables("transport_maps", refs, func(n string) { notes = append(notes, n) }) {
		got = append(got, tab.ref.raw)
	}
	if want := []string{"hash:/etc/postfix/transport", "inline:{ a.example=b }"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tables yielded %q, want %q", got, want)
	}
	if len(notes) != 2 || notes[0] != "transport_maps: not-a-table is not a lookup table" ||
		!strings.HasPrefix(notes[1], "transport_maps: hash:/etc/postfix/missing: ") {
		t.Errorf("notes = %q, want the item that is no table, then the unreadable one, each naming transport_maps", notes)
	}
}
