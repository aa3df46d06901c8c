package inbound

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"smarthost/config"
	"smarthost/relay/dkim"
	"smarthost/relay/resolve"
	"smarthost/relay/resolve/resolvetest"
)

var _ resolve.Resolver = (*resolvetest.Resolver)(nil)

// The keys in testdata/ are relay/dkim's throw-away test keys; nothing
// anywhere trusts them. Fixed keys and a fixed t= make signatures, and so
// the header.b prefixes in the golden files, reproducible.
const (
	rsaKey      = "testdata/rsa2048.pem"
	rsaOtherKey = "testdata/rsa2048-other.pem"
	edKey       = "testdata/ed25519.pem"
	hostname    = "mx.example.org"     // our authserv-id
	signTime    = 1_790_000_000        // 2026-09-21, t= of test signatures
	maxHeader   = 1 << 20              // config's default max_header_size
	goodIP      = "192.0.2.10"         // permitted by the test SPF records
	badIP       = "198.51.100.7"       // permitted by none
	defaultHelo = "mail.example.test"  // the usual client's HELO
	defaultFrom = "alice@example.test" // the usual MAIL FROM
)

// testNow is the checker's clock in tests.
func testNow() time.Time { return time.Unix(signTime+60, 0) }

// key is one signing key for a test message.
type key struct {
	file, domain, selector string
}

// record returns the DNS TXT value that publishes k's public key.
func (k key) record(t testing.TB) string {
	t.Helper()
	return loadKey(t, k).Record().String()
}

func loadKey(t testing.TB, k key) *dkim.Key {
	t.Helper()
	tab := table(t, k)
	return tab.Keys()[0]
}

// table loads a dkim.Table holding the keys, each signing every address
// (so a key can sign a message with a forged From), at the fixed time.
func table(t testing.TB, keys ...key) *dkim.Table {
	t.Helper()
	cfg := config.DKIM{Canonicalization: "relaxed/simple"}
	all, err := config.ParseAddressPattern("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		cfg.Keys = append(cfg.Keys, config.DKIMKey{Domain: k.domain, Selector: k.selector, PrivateKey: k.file, Sign: []config.AddressPattern{all}})
	}
	tab, err := dkim.Load(cfg)
	if err != nil {
		t.Fatalf("dkim.Load: %v", err)
	}
	tab.Now = func() time.Time { return time.Unix(signTime, 0) }
	return tab
}

// sign returns msg with a DKIM-Signature field prepended for each key, as
// our signer makes them (relay/dkim). Keys of several domains sign one at
// a time, the last key's signature on top.
func sign(t testing.TB, msg string, keys ...key) string {
	t.Helper()
	for _, k := range keys {
		header, err := dkim.ReadHeader(bufio.NewReader(strings.NewReader(msg)), maxHeader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := table(t, k).Signer(header, "x@x.invalid")
		if err != nil || s == nil {
			t.Fatalf("Signer: %v, %v", s, err)
		}
		s.Write([]byte(msg[len(header):]))
		sigs, err := s.Finish()
		if err != nil {
			t.Fatal(err)
		}
		msg = string(sigs.Header) + msg
	}
	return msg
}

// modes returns an Inbound config with the given modes.
func modes(spf, dkim, dmarc config.CheckMode) config.Inbound {
	return config.Inbound{SPF: spf, DKIM: dkim, DMARC: dmarc, QuarantineHeader: "X-Spam-Flag: YES"}
}

// newChecker returns a Checker with the test hostname, clock and r.
func newChecker(t testing.TB, cfg config.Inbound, r resolve.Resolver) *Checker {
	t.Helper()
	c, err := New(Options{Hostname: hostname, Config: cfg, Resolver: r, Now: testNow, Rand: func(int) int { return 0 }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// envelope returns the usual envelope, from ip.
func envelope(ip string) Envelope {
	return Envelope{ClientIP: netip.MustParseAddr(ip), Helo: defaultHelo, MailFrom: defaultFrom}
}

// result is what a whole check of one message gives.
type result struct {
	stored  []byte // the header section to store
	verdict Verdict
	err     error
}

// check runs msg through c the way the SMTP session does: header section
// first, then the body in chunks of the given size.
func check(t testing.TB, c *Checker, env Envelope, msg string, chunk int) result {
	t.Helper()
	ch := c.Begin(context.Background(), env)
	defer ch.Abort()
	br := bufio.NewReader(strings.NewReader(msg))
	header, err := dkim.ReadHeader(br, maxHeader)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ch.Header(header)
	if err != nil {
		t.Fatalf("Header: %v", err)
	}
	buf := make([]byte, chunk)
	for {
		n, rerr := br.Read(buf)
		if n > 0 {
			if _, err := ch.Write(buf[:n]); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if rerr != nil {
			break
		}
	}
	v, err := ch.Finish(context.Background())
	return result{stored: stored, verdict: v, err: err}
}

// crlf turns the LF line ends of a Go literal into CRLF, as after SMTP.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// message is a plain test message from the given From address.
func message(from string) string {
	return crlf("From: Alice <" + from + ">\nTo: bob@relay.example.org\nSubject: test\n" +
		"Date: Mon, 21 Sep 2026 10:00:00 +0000\nMessage-ID: <1@example.test>\n\nHello,\nthis is a test.\n")
}

// headerField returns the named field of a header section, unfolded, or "".
func headerField(h []byte, name string) string {
	fields, _ := splitHeader(h)
	for _, f := range fields {
		if f.is(name) {
			return strings.TrimSpace(unfold(f.value()))
		}
	}
	return ""
}

// fieldCount counts the fields of the given name.
func fieldCount(h []byte, name string) int {
	fields, _ := splitHeader(h)
	n := 0
	for _, f := range fields {
		if f.is(name) {
			n++
		}
	}
	return n
}

// longestLine returns the length of the longest line of h, CRLF excluded.
func longestLine(h []byte) int {
	n := 0
	for _, l := range bytes.Split(h, []byte("\r\n")) {
		n = max(n, len(l))
	}
	return n
}

// zone returns a resolver answering TXT queries from txt, with empty
// failure sets for the test to fill before use.
func zone(txt map[string][]string) *resolvetest.Resolver {
	return &resolvetest.Resolver{TXT: txt, NXDomain: map[string]bool{}, ServFail: map[string]bool{}, Timeout: map[string]bool{}}
}
