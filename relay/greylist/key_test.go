package greylist

import (
	"net/netip"
	"testing"
)

func TestNormalizeSender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"null sender", "", ""},
		{"lower-cased", "Alice@Example.TEST", "alice@example.test"},
		{"extension dropped", "alice+news@example.test", "alice@example.test"},
		{"leading plus kept", "+x@example.test", "+x@example.test"},
		{"VERP number folded", "list-bounces-1234@lists.test", "list-bounces-#@lists.test"},
		{"every standalone number folded", "bounce-5678-99@lists.test", "bounce-#-#@lists.test"},
		{"digits inside a word kept", "user123@example.test", "user123@example.test"},
		{"SRS0 is the original sender", "SRS0=HHH=TT=orig.test=bob@forwarder.test", "bob@orig.test"},
		{"SRS0 with + separator", "srs0+abcd=x1=orig.test=bob@forwarder.test", "bob@orig.test"},
		{"BATV tag dropped", "prvs=1234abcdef=alice@example.test", "alice@example.test"},
		{"no @", "Postmaster", "postmaster"},
	}
	for _, tt := range tests {
		if got := normalizeSender(tt.in); got != tt.want {
			t.Errorf("%s: normalizeSender(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestClientNet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   netip.Addr
		want string
	}{
		{netip.MustParseAddr("192.0.2.77"), "192.0.2.0/24"},
		{netip.MustParseAddr("::ffff:192.0.2.77"), "192.0.2.0/24"},
		{netip.MustParseAddr("2001:db8:1:2:3::4"), "2001:db8:1:2::/64"},
		{netip.MustParseAddr("fe80::1%eth0"), "fe80::/64"},
		{netip.Addr{}, "unknown"},
	}
	for _, tt := range tests {
		if got := clientNet(tt.ip); got != tt.want {
			t.Errorf("clientNet(%v) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestKeyOf_SeparatesParts(t *testing.T) {
	t.Parallel()
	// Moving text from one part to the next must not give the same key.
	a := keyOf(Triplet{Client: netip.MustParseAddr("192.0.2.1"), Sender: "a@b.test", Recipient: "c@d.test"})
	b := keyOf(Triplet{Client: netip.MustParseAddr("192.0.2.1"), Sender: "a@b.testc", Recipient: "@d.test"})
	if a == b {
		t.Errorf("keyOf gives one key for different triplets: %x", a)
	}
}

func TestRecord_RoundTrip(t *testing.T) {
	t.Parallel()
	k := keyOf(base)
	for _, e := range []entry{{first: 1767268800}, {first: 1767268800, passed: 1767269100}} {
		line := encode(k, e)
		gk, ge, ok := decode(line[:len(line)-1])
		if !ok || gk != k || ge != e {
			t.Errorf("decode(encode(%x, %+v)) = %x, %+v, %v; want the same back", k, e, gk, ge, ok)
		}
	}
}

func TestDecode_RejectsDamage(t *testing.T) {
	t.Parallel()
	good := encode(keyOf(base), entry{first: 1767268800, passed: 1767269100})
	good = good[:len(good)-1]
	tests := []struct {
		name, line string
	}{
		{"empty", ""},
		{"header", "smarthost-greylist 1"},
		{"one digit changed", "2" + good[1:]},
		{"checksum changed", good[:len(good)-1] + "x"},
		{"truncated", good[:len(good)-5]},
		{"NUL bytes", "\x00\x00\x00\x00"},
		{"passed before first", recordBody(1767269100, 1767268800)},
		{"zero first", recordBody(0, 0)},
	}
	for _, tt := range tests {
		if _, _, ok := decode(tt.line); ok {
			t.Errorf("%s: decode(%q) ok, want rejected", tt.name, tt.line)
		}
	}
}

// recordBody is a record with a valid checksum but impossible times.
func recordBody(first, passed int64) string {
	line := encode(keyOf(base), entry{first: first, passed: passed})
	return line[:len(line)-1]
}
