package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Zone is the DNS data a test publishes through dnsmasq. Every name must be
// under a domain listed in Domains, which dnsmasq answers authoritatively
// (unknown names there get NXDOMAIN and nothing is ever forwarded).
type Zone struct {
	// Domains are answered locally, e.g. "example.test".
	Domains []string
	// MX records: name → "preference host" entries, e.g. "10 mx1.example.test".
	// Use "0 ." for a null MX (RFC 7505).
	MX map[string][]string
	// A and AAAA records: name → addresses.
	Hosts map[string][]string
	// TXT records: name → values, each one TXT record, split into
	// 255-octet character strings as needed. A value may not contain a
	// comma (dnsmasq's separator).
	TXT map[string][]string
	// PTR records: address → names, e.g. "127.0.0.2" → {"mx1.example.test"}.
	// dnsmasq already answers the reverse lookup of every address in Hosts
	// with that entry's name; a PTR entry for such an address replaces
	// that answer, which is how a test publishes reverse DNS that does not
	// match. Reverse lookups of other addresses are refused (a temporary
	// error) unless "in-addr.arpa" or "ip6.arpa" is listed in Domains,
	// which makes them "no such host".
	PTR map[string][]string
}

// DNS is a running dnsmasq.
type DNS struct {
	// Addr is host:port for [dns] server.
	Addr string
}

// StartDNS runs dnsmasq on a loopback port serving z, and stops it when the
// test ends. It returns once dnsmasq answers queries.
func StartDNS(t testing.TB, z Zone) *DNS {
	t.Helper()
	bin := Require(t, "dnsmasq")["dnsmasq"]
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freeUDPPort()
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, z.args(port)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start dnsmasq: %v", err)
		}
		// exited is closed, not sent on, when dnsmasq is gone: both
		// waitForDNS and the kill below wait for it, and a dnsmasq that
		// exits by itself (its port taken meanwhile) is seen by both.
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		if err := waitForDNS(addr, z, exited); err != nil {
			cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%v; dnsmasq said: %s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return &DNS{Addr: addr}
	}
	t.Fatalf("dnsmasq did not start: %v", lastErr)
	return nil
}

func (z Zone) args(port int) []string {
	args := []string{
		"--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
		"--conf-file=/dev/null", "--pid-file=", "--user=", "--group=",
		"--bind-interfaces", "--listen-address=127.0.0.1",
		"--port=" + strconv.Itoa(port), "--log-facility=-", "--cache-size=0",
	}
	// --listen-address with --bind-interfaces keeps dnsmasq on the one
	// loopback address; --no-resolv and --local domains mean it never
	// forwards a query anywhere.
	for _, d := range z.Domains {
		args = append(args, "--local=/"+d+"/")
	}
	for name, recs := range z.MX {
		for _, r := range recs {
			pref, host, _ := strings.Cut(r, " ")
			if host == "." {
				// dnsmasq's --mx-host cannot express the root name, so
				// write the RR raw: preference (2 octets) and root (0).
				p, _ := strconv.Atoi(pref)
				args = append(args, fmt.Sprintf("--dns-rr=%s,15,%04x00", name, p))
				continue
			}
			args = append(args, fmt.Sprintf("--mx-host=%s,%s,%s", name, host, pref))
		}
	}
	for name, addrs := range z.Hosts {
		args = append(args, "--host-record="+name+","+strings.Join(addrs, ","))
	}
	for name, txts := range z.TXT {
		for _, txt := range txts {
			args = append(args, "--txt-record="+name+","+quoteTXT(txt))
		}
	}
	for addr, names := range z.PTR {
		for _, name := range names {
			args = append(args, "--ptr-record="+reverseName(addr)+","+name)
		}
	}
	return args
}

// reverseName returns the name of addr's PTR record (RFC 1035 §3.5,
// RFC 3596 §2.5), or addr itself when it is not an IP address (a reverse
// name written out).
func reverseName(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	b := ip.Unmap().AsSlice()
	var labels []string
	if ip.Unmap().Is4() {
		for i := len(b) - 1; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		return strings.Join(labels, ".") + ".in-addr.arpa"
	}
	const hex = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		labels = append(labels, string(hex[b[i]&0xf]), string(hex[b[i]>>4]))
	}
	return strings.Join(labels, ".") + ".ip6.arpa"
}

// quoteTXT splits a TXT value into dnsmasq's comma-separated character
// strings of at most 255 octets. The arguments reach dnsmasq without a
// shell, so no quoting is needed, but a value may not contain a comma.
func quoteTXT(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, s[:255])
		s = s[255:]
	}
	parts = append(parts, s)
	return strings.Join(parts, ",")
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// waitForDNS polls until the server answers for one of the zone's domains.
func waitForDNS(addr string, z Zone, exited <-chan struct{}) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	probe := "probe.invalid"
	if len(z.Domains) > 0 {
		probe = "probe." + z.Domains[0]
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("dnsmasq exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := r.LookupTXT(ctx, probe)
		cancel()
		var de *net.DNSError
		if err == nil || (asDNSError(err, &de) && de.IsNotFound) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s", addr)
}
