package interop

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"smarthost/relay/resolve"
)

func TestStartDNS_ServesZone(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 400)
	dns := StartDNS(t, Zone{
		Domains: []string{"example.test"},
		MX: map[string][]string{
			"example.test":      {"10 mx1.example.test", "20 mx2.example.test"},
			"null.example.test": {"0 ."},
		},
		Hosts: map[string][]string{"mx1.example.test": {"127.0.0.2", "::1"}},
		TXT: map[string][]string{
			"example.test":        {"v=spf1 ip4:127.0.0.0/8 -all"},
			"_dmarc.example.test": {"v=DMARC1; p=reject; adkim=s"},
			"long.example.test":   {long},
		},
	})
	r := resolve.New(dns.Addr, 0)
	ctx := context.Background()

	mx, err := r.LookupMX(ctx, "example.test")
	if err != nil || len(mx) != 2 || mx[0].Host != "mx1.example.test." || mx[0].Pref != 10 {
		t.Errorf("LookupMX(example.test) = %v, %v; want mx1 (10), mx2 (20)", fmtMX(mx), err)
	}
	null, err := r.LookupMX(ctx, "null.example.test")
	if err != nil || len(null) != 1 || null[0].Host != "." || null[0].Pref != 0 {
		t.Errorf("LookupMX(null.example.test) = %v, %v; want one null MX", fmtMX(null), err)
	}
	ips, err := r.LookupNetIP(ctx, "ip", "mx1.example.test")
	if err != nil || len(ips) != 2 || !containsAddr(ips, "127.0.0.2") {
		t.Errorf("LookupNetIP(mx1.example.test) = %v, %v; want 127.0.0.2 and ::1", ips, err)
	}
	txt, err := r.LookupTXT(ctx, "long.example.test")
	if err != nil || len(txt) != 1 || txt[0] != long {
		t.Errorf("LookupTXT(long.example.test) = %d records (%q), %v; want the 400-byte value joined", len(txt), txt, err)
	}
	dmarc, err := r.LookupTXT(ctx, "_dmarc.example.test")
	if err != nil || len(dmarc) != 1 || dmarc[0] != "v=DMARC1; p=reject; adkim=s" {
		t.Errorf("LookupTXT(_dmarc.example.test) = %q, %v", dmarc, err)
	}
	if _, err := r.LookupMX(ctx, "nowhere.example.test"); !resolve.IsNotFound(err) {
		t.Errorf("LookupMX(nowhere.example.test) error = %v, want not found", err)
	}
}

func fmtMX(mx []*net.MX) []string {
	var s []string
	for _, m := range mx {
		s = append(s, m.Host)
	}
	return s
}

func containsAddr(ips []netip.Addr, want string) bool {
	for _, ip := range ips {
		if ip.String() == want {
			return true
		}
	}
	return false
}
