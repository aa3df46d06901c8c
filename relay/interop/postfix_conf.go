package interop

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PostfixOptions configure a Postfix instance started by [StartPostfix].
// The zero value is an instance that neither listens nor relays: mail
// posted with [Postfix.Sendmail] to any domain is bounced.
//
// Every instance is confined to loopback and never looks up a name in DNS:
// inet_protocols = ipv4, smtp_dns_support_level = disabled, no peer name
// lookups, and without a relayhost every non-local domain is refused
// (default_transport = error) rather than resolved.
type PostfixOptions struct {
	// Listen is smtpd's address. "127.0.0.1:0" lets StartPostfix choose a
	// port (and retry with another if master finds it taken);
	// "127.0.0.1:10025" asks for that port; "" runs no smtpd. The host
	// must be 127.0.0.1.
	Listen string
	// Hostname is myhostname: the name in smtpd's greeting and Received
	// lines and in the SMTP client's EHLO. Default "postfix.test". It must
	// differ from the name of the server this instance relays to, as a
	// real one would: Postfix refuses to deliver to a server that greets
	// it with its own name ("mail for ... loops back to myself").
	Hostname string
	// Domains are the domains whose mail the instance keeps
	// (virtual_mailbox_domains): every recipient's copy goes to one
	// Maildir, read with [Postfix.Mailbox] and [Postfix.WaitDelivered].
	// smtpd accepts RCPT only for these domains (reject_unauth_destination).
	Domains []string
	// Recipients, when set, are the only addresses in Domains that exist
	// (virtual_mailbox_maps); smtpd refuses others with 550 5.1.1. When
	// empty every address in Domains exists.
	Recipients []string
	// CertFile and KeyFile, PEM files, make smtpd offer STARTTLS
	// (smtpd_tls_security_level = may) and note the TLS version in its
	// Received lines. Both or neither.
	CertFile, KeyFile string
	// Relay is where mail for every other domain goes; its zero value
	// means nowhere.
	Relay PostfixRelay
	// Main sets further main.cf parameters (name → value), replacing the
	// ones derived from the fields above, e.g. "smtp_tls_loglevel": "2".
	Main map[string]string
}

// PostfixRelay configures the instance's SMTP client towards its relayhost
// — the settings of a home server that sends through smarthost.
type PostfixRelay struct {
	// Host is relayhost in Postfix's syntax. Use a bracketed address and
	// port, e.g. "[127.0.0.1]:46501", so nothing is looked up.
	Host string
	// WrapperMode speaks TLS from the first byte (smtp_tls_wrappermode =
	// yes), for a port-465 server (RFC 8314). It needs TLS of at least
	// TLSEncrypt.
	WrapperMode bool
	// TLS is smtp_tls_security_level; "" leaves Postfix's default (none).
	TLS TLSLevel
	// CAFile is smtp_tls_CAfile: the PEM certificates trusted at
	// TLSVerify and TLSSecure, e.g. smarthost's self-signed certificate.
	CAFile string
	// Match is the name the server's certificate must carry at TLSVerify
	// or TLSSecure. A bracketed IP relayhost has no name of its own to
	// match, so this becomes a smtp_tls_policy_maps entry for Host with
	// match=Match.
	Match string
	// User and Password are the SASL credentials
	// (smtp_sasl_password_maps entry for Host); with User set,
	// smtp_sasl_auth_enable = yes and PLAIN/LOGIN are allowed (noanonymous),
	// which is safe only over TLS. Needs Cyrus SASL's plugins (Debian
	// package libsasl2-modules).
	User, Password string
}

// TLSLevel is a value of Postfix's smtp_tls_security_level.
type TLSLevel string

// The levels [PostfixRelay.TLS] may take (postconf(5)).
const (
	// TLSNone never uses TLS.
	TLSNone TLSLevel = "none"
	// TLSMay uses STARTTLS when offered, without verifying the
	// certificate; plain text otherwise.
	TLSMay TLSLevel = "may"
	// TLSEncrypt requires TLS but does not verify the certificate.
	TLSEncrypt TLSLevel = "encrypt"
	// TLSVerify requires TLS and a certificate that chains to CAFile and
	// carries the expected name.
	TLSVerify TLSLevel = "verify"
	// TLSSecure is TLSVerify, matching the next-hop domain by default.
	TLSSecure TLSLevel = "secure"
)

// Valid reports whether l is one of the levels above, or "".
func (l TLSLevel) Valid() bool {
	switch l {
	case "", TLSNone, TLSMay, TLSEncrypt, TLSVerify, TLSSecure:
		return true
	}
	return false
}

func (o PostfixOptions) withDefaults() PostfixOptions {
	if o.Hostname == "" {
		o.Hostname = "postfix.test"
	}
	return o
}

// listenAddr validates Listen and splits it; port 0 means "choose".
func (o PostfixOptions) listenAddr() (host string, port int, err error) {
	if o.Listen == "" {
		return "", 0, nil
	}
	// Only 127.0.0.1: Postfix refuses an inet_interfaces address that is
	// not configured on an interface, such as 127.0.0.2.
	ap, err := netip.ParseAddrPort(o.Listen)
	if err != nil || ap.Addr() != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		return "", 0, fmt.Errorf("postfix: Listen %q: want 127.0.0.1 and a port, e.g. 127.0.0.1:0", o.Listen)
	}
	return ap.Addr().String(), int(ap.Port()), nil
}

// validate reports options Postfix would misread or reject.
func (o PostfixOptions) validate() error {
	r := o.Relay
	var problems []string
	if !r.TLS.Valid() {
		problems = append(problems, fmt.Sprintf("Relay.TLS %q is not a Postfix TLS level", r.TLS))
	}
	if r.Host == "" && (r.WrapperMode || r.TLS != "" || r.CAFile != "" || r.Match != "" || r.User != "") {
		problems = append(problems, "Relay settings without Relay.Host")
	}
	if r.WrapperMode && r.TLS != TLSEncrypt && r.TLS != TLSVerify && r.TLS != TLSSecure {
		problems = append(problems, "Relay.WrapperMode needs Relay.TLS encrypt, verify or secure")
	}
	if r.Match != "" && r.TLS != TLSVerify && r.TLS != TLSSecure {
		problems = append(problems, "Relay.Match needs Relay.TLS verify or secure")
	}
	if (r.User == "") != (r.Password == "") {
		problems = append(problems, "Relay.User and Relay.Password go together")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		problems = append(problems, "CertFile and KeyFile go together")
	}
	for _, s := range append([]string{o.Hostname, r.Host, r.CAFile, r.Match, r.User, r.Password, o.CertFile, o.KeyFile}, append(o.Domains, o.Recipients...)...) {
		if strings.ContainsAny(s, "\r\n") || strings.TrimSpace(s) != s {
			problems = append(problems, fmt.Sprintf("%q: no line breaks or surrounding spaces in a main.cf value or map entry", s))
		}
	}
	for _, s := range append(append([]string{r.Host, r.User}, o.Domains...), o.Recipients...) {
		if strings.ContainsAny(s, " \t") {
			problems = append(problems, fmt.Sprintf("%q: no spaces in a map key or user name", s))
		}
	}
	for k, v := range o.Main {
		if strings.ContainsAny(k+v, "\r\n") || strings.ContainsAny(k, " \t=") {
			problems = append(problems, fmt.Sprintf("Main[%q]: bad main.cf parameter", k))
		}
	}
	if len(problems) > 0 {
		return errors.New("postfix: options: " + strings.Join(problems, "; "))
	}
	return nil
}

// writeConfig creates the instance's directories and writes main.cf,
// master.cf and the lookup tables (texthash: read as plain text, so no
// postmap is needed).
func (p *Postfix) writeConfig() error {
	if err := p.opts.validate(); err != nil {
		return err
	}
	// The daemons run as postfix and chdir into spool/, so the path to it
	// must be searchable; the queue subdirectories are made by postfix
	// check with Postfix's own modes.
	if err := os.Chmod(p.Dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"etc", "spool"} {
		if err := os.Mkdir(filepath.Join(p.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// virtual(8) creates the Maildir inside mail/ as the mailbox owner.
	mail := filepath.Join(p.Dir, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		return err
	}
	if err := os.Chown(mail, p.mailbox.uid, p.mailbox.gid); err != nil {
		return err
	}
	files := map[string]string{"main.cf": p.mainCF(), "master.cf": p.masterCF()}
	if len(p.opts.Recipients) > 0 {
		var b strings.Builder
		for _, r := range p.opts.Recipients {
			fmt.Fprintf(&b, "%s %s\n", strings.ToLower(r), maildirName)
		}
		files["mailboxes"] = b.String()
	}
	if r := p.opts.Relay; r.User != "" {
		files["sasl_passwd"] = r.Host + " " + r.User + ":" + r.Password + "\n"
	}
	if r := p.opts.Relay; r.Match != "" {
		files["tls_policy"] = r.Host + " " + string(r.TLS) + " match=" + r.Match + "\n"
	}
	for name, text := range files {
		mode := os.FileMode(0o644)
		if name == "sasl_passwd" {
			mode = 0o600 // read by smtp(8) as root, before it drops privileges
		}
		if err := writeOld(filepath.Join(p.etc(), name), text, mode); err != nil {
			return err
		}
	}
	return nil
}

// writeOld writes a configuration file dated an hour back. Postfix's
// programs wait, re-reading, until main.cf is at least a second or two
// old, in case an editor is still writing it; fresh files would cost
// every command two seconds.
func writeOld(path, text string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		return err
	}
	old := time.Now().Add(-time.Hour)
	return os.Chtimes(path, old, old)
}

// maildirName is the one Maildir under mail/ that every recipient's copy
// goes to; the trailing slash makes virtual(8) write Maildir, not mbox.
const maildirName = "inbox/"

// mainCF is the instance's main.cf.
func (p *Postfix) mainCF() string {
	o := p.opts
	etc := p.etc()
	params := [][2]string{
		{"compatibility_level", "3.6"},
		{"config_directory", etc},
		{"queue_directory", filepath.Join(p.Dir, "spool")},
		{"data_directory", filepath.Join(p.Dir, "data")},
		{"mail_owner", "postfix"},
		{"setgid_group", "postdrop"},
		// Logging to a file through postlogd(8), not syslog.
		{"maillog_file", p.logPath()},
		{"maillog_file_prefixes", p.Dir},
		{"myhostname", o.Hostname},
		{"myorigin", "$myhostname"},
		{"mydestination", ""},
		{"local_transport", "error:local delivery is disabled in this instance"},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"relay_domains", ""},
		{"biff", "no"},
		{"append_dot_mydomain", "no"},
		// Loopback only, IPv4 only, no DNS.
		{"inet_interfaces", "loopback-only"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		{"smtp_dns_support_level", "disabled"},
		{"smtp_host_lookup", "native"},
		{"smtpd_peername_lookup", "no"},
		// smtpd takes mail for Domains only, from anyone: the home server's
		// port, where smarthost hands over inbound mail.
		{"smtpd_relay_restrictions", "reject_unauth_destination"},
		{"smtpd_banner", "$myhostname ESMTP"},
		{"smtpd_tls_loglevel", "1"},
		{"smtp_tls_loglevel", "1"},
	}
	add := func(k, v string) { params = append(params, [2]string{k, v}) }
	if o.Listen != "" {
		host, _, _ := o.listenAddr()
		params[indexOf(params, "inet_interfaces")][1] = host
	}
	if len(o.Domains) > 0 {
		add("virtual_mailbox_domains", strings.Join(o.Domains, ", "))
		add("virtual_mailbox_base", filepath.Join(p.Dir, "mail"))
		if len(o.Recipients) > 0 {
			add("virtual_mailbox_maps", "texthash:"+filepath.Join(etc, "mailboxes"))
		} else {
			add("virtual_mailbox_maps", "static:"+maildirName)
		}
		add("virtual_uid_maps", "static:"+strconv.Itoa(p.mailbox.uid))
		add("virtual_gid_maps", "static:"+strconv.Itoa(p.mailbox.gid))
		add("virtual_minimum_uid", "1")
	}
	if o.CertFile != "" {
		add("smtpd_tls_security_level", "may")
		add("smtpd_tls_cert_file", o.CertFile)
		add("smtpd_tls_key_file", o.KeyFile)
		add("smtpd_tls_received_header", "yes")
	}
	r := o.Relay
	if r.Host == "" {
		add("default_transport", "error:no relayhost in this instance")
	} else {
		add("relayhost", r.Host)
	}
	if r.WrapperMode {
		add("smtp_tls_wrappermode", "yes")
	}
	if r.TLS != "" {
		add("smtp_tls_security_level", string(r.TLS))
	}
	if r.CAFile != "" {
		add("smtp_tls_CAfile", r.CAFile)
	}
	if r.Match != "" {
		add("smtp_tls_policy_maps", "texthash:"+filepath.Join(etc, "tls_policy"))
	}
	if r.User != "" {
		add("smtp_sasl_auth_enable", "yes")
		add("smtp_sasl_password_maps", "texthash:"+filepath.Join(etc, "sasl_passwd"))
		// The default, noplaintext, would forbid PLAIN and LOGIN even
		// inside TLS; smarthost offers only those.
		add("smtp_sasl_security_options", "noanonymous")
		add("smtp_sasl_tls_security_options", "noanonymous")
	}
	keys := make([]string, 0, len(o.Main))
	for k := range o.Main {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if i := indexOf(params, k); i >= 0 {
			params[i][1] = o.Main[k]
		} else {
			add(k, o.Main[k])
		}
	}
	var b strings.Builder
	b.WriteString("# Written by smarthost/relay/interop for one test.\n")
	for _, kv := range params {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	return b.String()
}

func indexOf(params [][2]string, key string) int {
	for i, kv := range params {
		if kv[0] == key {
			return i
		}
	}
	return -1
}

// masterCF is the instance's master.cf: Debian's services that mail needs,
// none chrooted (the queue directory holds no chroot environment), plus
// smtpd on Addr when listening.
func (p *Postfix) masterCF() string {
	var b strings.Builder
	b.WriteString("# service type private unpriv chroot wakeup maxproc command\n")
	if p.Addr != "" {
		fmt.Fprintf(&b, "%s inet n - n - - smtpd\n", p.Addr)
	}
	b.WriteString(`pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`)
	return b.String()
}

// rewriteMasterCF writes master.cf again, for a new smtpd address.
func (p *Postfix) rewriteMasterCF() error {
	return writeOld(filepath.Join(p.etc(), "master.cf"), p.masterCF(), 0o644)
}

// pickPort returns a port on host that is free now, chosen at random
// below the kernel's ephemeral range. Ports from that range are what
// listeners on port 0 and outgoing connections get; a port below it stays
// ours across [Postfix.Stop] and [Postfix.Start] unless another test picks
// the very same one.
func pickPort(host string) (int, error) {
	lo, hi := 10000, ephemeralLow()-1
	for try := 0; try < 50 && hi > lo; try++ {
		port := lo + rand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	// No room below the ephemeral range: let the kernel choose.
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("postfix: no free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of Linux's ephemeral range (32768 unless
// configured otherwise).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
