package inbound

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dmarc"

	"smarthost/config"
	"smarthost/relay/resolve/resolvetest"
)

// dmarcZone publishes SPF, DKIM and DMARC records for the DMARC tests.
// Every domain's SPF record permits goodIP only; rsaKey is published as
// selector "rsa" of every domain that signs.
func dmarcZone(t testing.TB) *resolvetest.Resolver {
	spf := "v=spf1 ip4:192.0.2.0/24 -all"
	txt := map[string][]string{
		"_dmarc.example.test":    {"v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.test"},
		"_dmarc.strict.test":     {"v=DMARC1; p=reject; aspf=s; adkim=s"},
		"_dmarc.quar.test":       {"v=DMARC1; p=quarantine"},
		"_dmarc.none.test":       {"v=DMARC1; p=none"},
		"_dmarc.pct.test":        {"v=DMARC1; p=reject; pct=50"},
		"_dmarc.pct0.test":       {"v=DMARC1; p=reject; pct=0"},
		"_dmarc.spnone.test":     {"v=DMARC1; p=reject; sp=none"},
		"_dmarc.own.spnone.test": {"v=DMARC1; p=reject"},
		"_dmarc.bad.test":        {"v=DMARC1; p=bogus"},
		"_dmarc.badrua.test":     {"v=DMARC1; p=bogus; rua=mailto:d@badrua.test"},
		"_dmarc.multi.test":      {"v=DMARC1; p=reject", "v=DMARC1; p=none"},
		"_dmarc.spftemp.test":    {"v=DMARC1; p=reject"},
		"_dmarc.example.co.uk":   {"v=DMARC1; p=reject"},
		"_dmarc.other.test":      {"not a DMARC record", "v=spf1 -all"},
	}
	for _, d := range []string{"example.test", "bounce.example.test", "other.test", "strict.test", "bounce.strict.test",
		"quar.test", "none.test", "pct.test", "pct0.test", "sub.spnone.test", "own.spnone.test", "bad.test", "badrua.test",
		"multi.test", "norecord.test", "tempdmarc.test", "example.co.uk"} {
		txt[d] = []string{spf}
	}
	for _, d := range []string{"example.test", "other.test", "strict.test", "tempdmarc.test"} {
		txt["rsa._domainkey."+d] = []string{rsaSel.record(t)}
	}
	r := zone(txt)
	r.ServFail["_dmarc.tempdmarc.test"] = true
	r.ServFail["spftemp.test"] = true
	return r
}

// signer returns rsaKey as selector "rsa" of domain d.
func signer(d string) key { return key{rsaKey, d, "rsa"} }

// TestDMARC_Results checks DMARC (RFC 7489) end to end with SPF and DKIM
// in tag mode: the result and policy for each From domain, and what
// enforce does: refuse (p=reject), mark (p=quarantine) or defer
// (a temperror that could have been a reject).
func TestDMARC_Results(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ip       string
		mailFrom string
		msg      string // the message, unsigned; "" means message(from)
		from     string
		keys     []key
		rand     int      // what Options.Rand returns, for pct=
		want     []string // the dmarc results, unfolded
		enforce  error    // what Finish returns under dmarc=enforce
		quar     bool     // whether enforce adds the quarantine field
	}{
		{name: "pass: SPF aligned, relaxed", ip: goodIP, mailFrom: "b@bounce.example.test", from: "a@example.test",
			want: []string{"dmarc=pass header.from=example.test polrec.p=reject"}},
		{name: "pass: DKIM aligned, SPF fails (forwarded)", ip: badIP, mailFrom: "a@example.test", from: "a@example.test", keys: []key{signer("example.test")},
			want: []string{"dmarc=pass header.from=example.test polrec.p=reject"}},
		{name: "pass: parent d= aligns with a subdomain From, relaxed", ip: goodIP, mailFrom: "x@other.test", from: "a@news.example.test", keys: []key{signer("example.test")},
			want: []string{"dmarc=pass header.from=news.example.test polrec.domain=example.test polrec.p=reject"}},
		{name: "pass: strict, same domain", ip: goodIP, mailFrom: "x@other.test", from: "a@strict.test", keys: []key{signer("strict.test")},
			want: []string{"dmarc=pass header.from=strict.test polrec.p=reject"}},
		{name: "pass: Organizational Domain under a public suffix", ip: goodIP, mailFrom: "b@example.co.uk", from: "a@mail.example.co.uk",
			want: []string{"dmarc=pass header.from=mail.example.co.uk polrec.domain=example.co.uk polrec.p=reject"}},
		{name: "fail: forged From, signed and sent by another domain", ip: goodIP, mailFrom: "x@other.test", from: "ceo@example.test", keys: []key{signer("other.test")},
			want:    []string{"dmarc=fail header.from=example.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "fail: unsigned from a client SPF does not permit", ip: badIP, mailFrom: "a@example.test", from: "a@example.test",
			want:    []string{"dmarc=fail header.from=example.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "fail: aspf=s, subdomain MAIL FROM", ip: goodIP, mailFrom: "b@bounce.strict.test", from: "a@strict.test",
			want:    []string{"dmarc=fail header.from=strict.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "fail: adkim=s, parent d= for a subdomain From", ip: goodIP, mailFrom: "x@other.test", from: "a@news.strict.test", keys: []key{signer("strict.test")},
			want:    []string{"dmarc=fail header.from=news.strict.test policy.dmarc=reject polrec.domain=strict.test polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "fail: subdomain gets sp=quarantine", ip: goodIP, mailFrom: "x@other.test", from: "a@news.example.test",
			want: []string{"dmarc=fail header.from=news.example.test policy.dmarc=quarantine polrec.domain=example.test polrec.p=reject"},
			quar: true},
		{name: "fail: subdomain gets sp=none", ip: goodIP, mailFrom: "x@other.test", from: "a@sub.spnone.test",
			want: []string{"dmarc=fail header.from=sub.spnone.test policy.dmarc=none polrec.domain=spnone.test polrec.p=reject"}},
		{name: "fail: a record at the subdomain itself applies its p=", ip: goodIP, mailFrom: "x@other.test", from: "a@own.spnone.test",
			want:    []string{"dmarc=fail header.from=own.spnone.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "fail: p=quarantine", ip: badIP, mailFrom: "a@quar.test", from: "a@quar.test",
			want: []string{"dmarc=fail header.from=quar.test policy.dmarc=quarantine polrec.p=quarantine"},
			quar: true},
		{name: "fail: p=none", ip: badIP, mailFrom: "a@none.test", from: "a@none.test",
			want: []string{"dmarc=fail header.from=none.test policy.dmarc=none polrec.p=none"}},
		{name: "fail: pct=50, sampled", ip: badIP, mailFrom: "a@pct.test", from: "a@pct.test", rand: 10,
			want:    []string{"dmarc=fail header.from=pct.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "fail: pct=50, not sampled: quarantine", ip: badIP, mailFrom: "a@pct.test", from: "a@pct.test", rand: 70,
			want: []string{"dmarc=fail header.from=pct.test policy.dmarc=quarantine polrec.p=reject"},
			quar: true},
		{name: "fail: pct=0 never rejects", ip: badIP, mailFrom: "a@pct0.test", from: "a@pct0.test", rand: 0,
			want: []string{"dmarc=fail header.from=pct0.test policy.dmarc=quarantine polrec.p=reject"},
			quar: true},
		{name: "none: no record", ip: badIP, mailFrom: "a@norecord.test", from: "a@norecord.test",
			want: []string{`dmarc=none reason="no DMARC record" header.from=norecord.test`}},
		{name: "none: TXT records, none of them DMARC", ip: goodIP, mailFrom: "a@other.test", from: "a@other.test",
			want: []string{`dmarc=none reason="no DMARC record" header.from=other.test`}},
		{name: "none: no From field", ip: goodIP, mailFrom: "a@example.test",
			msg:  crlf("To: b@relay.example.org\nSubject: no from\n\nbody\n"),
			want: []string{`dmarc=none reason="no From field"`}},
		{name: "temperror: record lookup fails", ip: badIP, mailFrom: "a@tempdmarc.test", from: "a@tempdmarc.test",
			want:    []string{`dmarc=temperror reason="DMARC record unavailable" header.from=tempdmarc.test`},
			enforce: ErrTempFail},
		{name: "temperror: record lookup fails, but a strictly aligned DKIM pass cannot fail", ip: badIP, mailFrom: "a@tempdmarc.test", from: "a@tempdmarc.test",
			keys: []key{signer("tempdmarc.test")},
			want: []string{`dmarc=temperror reason="DMARC record unavailable" header.from=tempdmarc.test`}},
		{name: "temperror: aligned SPF temperror under p=reject", ip: badIP, mailFrom: "a@spftemp.test", from: "a@spftemp.test",
			want:    []string{`dmarc=temperror reason="aligned identifier temporarily unverifiable" header.from=spftemp.test policy.dmarc=reject polrec.p=reject`},
			enforce: ErrTempFail},
		{name: "permerror: bad record", ip: badIP, mailFrom: "a@bad.test", from: "a@bad.test",
			want: []string{`dmarc=permerror reason="bad DMARC record" header.from=bad.test`}},
		{name: "bad record with rua= counts as p=none", ip: badIP, mailFrom: "a@badrua.test", from: "a@badrua.test",
			want: []string{"dmarc=fail header.from=badrua.test policy.dmarc=none polrec.p=none"}},
		{name: "permerror: two DMARC records", ip: badIP, mailFrom: "a@multi.test", from: "a@multi.test",
			want: []string{`dmarc=permerror reason="multiple DMARC records" header.from=multi.test`}},
		{name: "permerror: unparseable From", ip: goodIP, mailFrom: "a@example.test",
			msg:  crlf("From: <<<a@example.test\nSubject: x\n\nbody\n"),
			want: []string{`dmarc=permerror reason="unparseable From"`}},
		{name: "two From fields, one domain: evaluated once", ip: goodIP, mailFrom: "a@example.test",
			msg:  crlf("From: a@example.test\nFrom: b@EXAMPLE.test\nSubject: x\n\nbody\n"),
			want: []string{"dmarc=pass header.from=example.test polrec.p=reject"}},
		{name: "two From domains: each evaluated, the strictest wins", ip: goodIP, mailFrom: "x@other.test",
			msg: crlf("From: x@other.test\nFrom: ceo@example.test\nSubject: x\n\nbody\n"), keys: []key{signer("other.test")},
			want: []string{`dmarc=none reason="no DMARC record" header.from=other.test`,
				"dmarc=fail header.from=example.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "one From field with two domains", ip: goodIP, mailFrom: "x@other.test",
			msg: crlf("From: x@other.test, ceo@example.test\nSubject: x\n\nbody\n"), keys: []key{signer("other.test")},
			want: []string{`dmarc=none reason="no DMARC record" header.from=other.test`,
				"dmarc=fail header.from=example.test policy.dmarc=reject polrec.p=reject"},
			enforce: ErrDMARCReject},
		{name: "too many From domains", ip: goodIP, mailFrom: "x@other.test",
			msg:     crlf("From: a@a.test, b@b.test, c@c.test, d@d.test, e@e.test\nSubject: x\n\nbody\n"),
			want:    []string{`dmarc=permerror reason="too many From domains"`},
			enforce: ErrDMARCReject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := tt.msg
			if msg == "" {
				msg = message(tt.from)
			}
			msg = sign(t, msg, tt.keys...)
			env := Envelope{ClientIP: netip.MustParseAddr(tt.ip), Helo: defaultHelo, MailFrom: tt.mailFrom}
			for _, mode := range []config.CheckMode{config.CheckTag, config.CheckEnforce} {
				c, err := New(Options{Hostname: hostname, Config: modes(config.CheckTag, config.CheckTag, mode),
					Resolver: dmarcZone(t), Now: testNow, Rand: func(int) int { return tt.rand }})
				if err != nil {
					t.Fatal(err)
				}
				got := check(t, c, env, msg, 4096)
				if rs := resultsOf(t, got.verdict.Header, "dmarc"); strings.Join(rs, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("%s: dmarc results =\n%s\nwant\n%s", mode, strings.Join(rs, "\n"), strings.Join(tt.want, "\n"))
				}
				var wantErr error
				wantQuar := 0
				if mode == config.CheckEnforce {
					wantErr = tt.enforce
					if tt.quar {
						wantQuar = 1
					}
				}
				if !errors.Is(got.err, wantErr) || (wantErr == nil) != (got.err == nil) {
					t.Errorf("%s: Finish error = %v, want %v", mode, got.err, wantErr)
				}
				if n := fieldCount(got.verdict.Header, "X-Spam-Flag"); n != wantQuar {
					t.Errorf("%s: %d X-Spam-Flag fields, want %d", mode, n, wantQuar)
				}
			}
		})
	}
}

// resultsOf returns the results of one method in the
// Authentication-Results field of h, unfolded.
func resultsOf(t testing.TB, h []byte, method string) []string {
	t.Helper()
	ar := headerField(h, "Authentication-Results")
	if ar == "" {
		t.Fatalf("no Authentication-Results in %q", h)
	}
	var out []string
	for _, r := range strings.Split(ar, ";")[1:] {
		if r = strings.TrimSpace(r); strings.HasPrefix(r, method+"=") {
			out = append(out, r)
		}
	}
	return out
}

// TestSPFEnforce_DMARCPassWins: under spf=enforce an SPF fail is refused,
// unless DMARC is evaluated and passes through an aligned DKIM signature
// (RFC 7489 §10.1: forwarded mail keeps its signature, not its SPF).
func TestSPFEnforce_DMARCPassWins(t *testing.T) {
	t.Parallel()
	signed := sign(t, message("a@example.test"), signer("example.test"))
	unsigned := message("a@example.test")
	env := Envelope{ClientIP: netip.MustParseAddr(badIP), Helo: defaultHelo, MailFrom: "a@example.test"}
	tests := []struct {
		name  string
		dmarc config.CheckMode
		msg   string
		want  error
	}{
		{"DMARC pass: accepted", config.CheckTag, signed, nil},
		{"DMARC fail: SPF refuses", config.CheckTag, unsigned, ErrSPFFail},
		{"DMARC enforce fail: SPF's refusal comes first", config.CheckEnforce, unsigned, ErrSPFFail},
		{"DMARC off: SPF refuses a signed message", config.CheckOff, signed, ErrSPFFail},
	}
	for _, tt := range tests {
		c := newChecker(t, modes(config.CheckEnforce, config.CheckTag, tt.dmarc), dmarcZone(t))
		got := check(t, c, env, tt.msg, 4096)
		if !errors.Is(got.err, tt.want) || (tt.want == nil) != (got.err == nil) {
			t.Errorf("%s: Finish error = %v, want %v", tt.name, got.err, tt.want)
		}
		if tt.want != nil && !strings.Contains(got.verdict.Summary, "action=reject") {
			t.Errorf("%s: Summary = %q, want action=reject", tt.name, got.verdict.Summary)
		}
	}
}

// TestAligned checks identifier alignment (RFC 7489 §3.1) with
// Organizational Domains from the Public Suffix List (§3.2).
func TestAligned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		auth, from string
		mode       dmarc.AlignmentMode
		want       bool
	}{
		{"example.test", "example.test", dmarc.AlignmentStrict, true},
		{"EXAMPLE.test.", "example.test", dmarc.AlignmentStrict, true},
		{"bounce.example.test", "example.test", dmarc.AlignmentStrict, false},
		{"bounce.example.test", "example.test", dmarc.AlignmentRelaxed, true},
		{"a.example.test", "b.example.test", dmarc.AlignmentRelaxed, true},
		{"example.test", "news.example.test", dmarc.AlignmentRelaxed, true},
		{"evil-example.test", "example.test", dmarc.AlignmentRelaxed, false},
		{"example.test.evil.test", "example.test", dmarc.AlignmentRelaxed, false},
		{"mail.example.co.uk", "example.co.uk", dmarc.AlignmentRelaxed, true},
		{"example.co.uk", "other.co.uk", dmarc.AlignmentRelaxed, false},
		{"co.uk", "example.co.uk", dmarc.AlignmentRelaxed, false},
		{"", "example.test", dmarc.AlignmentRelaxed, false},
	}
	for _, tt := range tests {
		if got := aligned(tt.auth, tt.from, tt.mode); got != tt.want {
			t.Errorf("aligned(%q, %q, %s) = %v, want %v", tt.auth, tt.from, tt.mode, got, tt.want)
		}
	}
}

// TestOrgDomain checks Organizational Domains (RFC 7489 §3.2).
func TestOrgDomain(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"example.test", "example.test"},
		{"a.b.example.test", "example.test"},
		{"mail.example.co.uk", "example.co.uk"},
		{"example.co.uk", "example.co.uk"},
		{"co.uk", "co.uk"},
		{"test", "test"},
	}
	for _, tt := range tests {
		if got := orgDomain(tt.in); got != tt.want {
			t.Errorf("orgDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDMARC_LookupFallsBackToOrgDomain: _dmarc.<From domain> first, then
// _dmarc.<Organizational Domain>, and never past a DNS failure.
func TestDMARC_LookupFallsBackToOrgDomain(t *testing.T) {
	t.Parallel()
	r := dmarcZone(t)
	r.ServFail["_dmarc.down.example.test"] = true
	tests := []struct {
		domain string
		want   []string
		result string
	}{
		{"news.example.test", []string{"TXT _dmarc.news.example.test", "TXT _dmarc.example.test"}, ""},
		{"example.test", []string{"TXT _dmarc.example.test"}, ""},
		{"down.example.test", []string{"TXT _dmarc.down.example.test"}, "temperror"},
	}
	for _, tt := range tests {
		before := len(r.Queries())
		p := discover(t.Context(), r, tt.domain)
		if got := r.Queries()[before:]; strings.Join(got, ",") != strings.Join(tt.want, ",") || string(p.result) != tt.result {
			t.Errorf("discover(%s): queries %q, result %q; want %q, %q", tt.domain, got, p.result, tt.want, tt.result)
		}
	}
}
