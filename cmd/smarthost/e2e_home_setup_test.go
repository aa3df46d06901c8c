package main

// The setup of issue 6's scenarios (e2e_home_test.go): one homeEnv per
// scenario, the home Postfix configured from the README, and a DSN parser.

import (
	"bytes"
	"io"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-message"

	"smarthost/relay/dkim"
	"smarthost/relay/interop"
)

// homeEnv is one complete setup of issue 6; each scenario has its own.
type homeEnv struct {
	dns     *interop.DNS
	key     e2eKey
	srv     *e2eServer
	home    *interop.Postfix
	outside *interop.Postfix
	dialer  *mxDialer
}

// startHomeEnv starts DNS, the outside Postfix, smarthost and the home
// Postfix. Everything stops when the test ends.
func startHomeEnv(t *testing.T) *homeEnv {
	t.Helper()
	dir := t.TempDir()
	env := &homeEnv{key: newKey(t, dir, homeDomain, dkimSelector, dkim.KindRSA2048)}
	env.dns = interop.StartDNS(t, interop.Zone{
		Domains: []string{"vps.test", homeDomain, outsideDomain},
		MX: map[string][]string{
			homeDomain:    {"10 " + vpsHostname},
			outsideDomain: {"10 " + outsideMX},
		},
		Hosts: map[string][]string{vpsHostname: {"127.0.0.1"}, outsideMX: {outsideMXAddr}},
		TXT: map[string][]string{
			"vps.test":                {"v=spf1 a:" + vpsHostname + " -all"},
			homeDomain:                {"v=spf1 mx a:" + vpsHostname + " -all"},
			env.key.recordName():      {env.key.Record},
			"_dmarc." + homeDomain:    {"v=DMARC1; p=quarantine; rua=mailto:postmaster@" + homeDomain},
			outsideDomain:             {"v=spf1 ip4:127.0.0.1 -all"}, // the outside world sends from loopback
			"_dmarc." + outsideDomain: {"v=DMARC1; p=reject"},
		},
	})
	certFile, keyFile := certFiles(t, dir, outsideMX)
	env.outside = interop.StartPostfix(t, interop.PostfixOptions{
		Listen:     "127.0.0.1:0",
		Hostname:   outsideMX,
		Domains:    []string{outsideDomain},
		Recipients: []string{friend},
		CertFile:   certFile,
		KeyFile:    keyFile,
	})

	c := e2eConfig{
		Dir:          t.TempDir(),
		Hostname:     vpsHostname,
		RelayDomains: []string{homeDomain},
		Listeners: []e2eListener{
			{Name: "submissions", TLS: "implicit", Role: "submission"},
			{Name: "submission", TLS: "starttls", Role: "submission"},
			{Name: "smtp", TLS: "starttls", Role: "mx"},
		},
		Users:            map[string]string{homeUser: homePassword, phoneUser: phonePassword},
		Senders:          map[string][]string{homeUser: {"*@" + homeDomain}},
		Keys:             []e2eKey{env.key},
		Canonicalization: "relaxed/simple",
		DNS:              env.dns.Addr,
	}
	// The home Postfix needs smarthost's 465 port and smarthost the home
	// Postfix's port: open smarthost's listeners first.
	listeners := listenRelay(t, c)
	env.home = interop.StartPostfix(t, homePostfixOptions(t, c.listenerAddr("submissions")))
	c.Transport = map[string]string{homeDomain: nextHop(env.home.Addr)}
	env.dialer = &mxDialer{routes: map[string]string{outsideMXAddr + ":25": env.outside.Addr}}
	env.srv = serveRelay(t, c, listeners, env.dialer.Dial)
	return env
}

// listenerAddr is the address of listener name, once [listenRelay] or
// [startRelay] has filled it in.
func (c e2eConfig) listenerAddr(name string) string {
	for _, l := range c.Listeners {
		if l.Name == name {
			return l.Address
		}
	}
	return ""
}

// readmeHomePostfix returns the main.cf settings the README's setup
// guide gives the home Postfix (the first code block of its section "The
// home Postfix"), name → value. It fails the test unless they are the
// settings issue 6 names: relayhost on port 465 in brackets (no MX
// lookup), wrapper-mode TLS that must be encrypted, and SASL with a
// password map.
func readmeHomePostfix(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	heading := regexp.MustCompile(`(?m)^#+ .*The home Postfix\s*$`).FindStringIndex(readme)
	if heading == nil {
		t.Fatal(`README.md has no section "The home Postfix"`)
	}
	_, block, ok := strings.Cut(readme[heading[1]:], "```\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal(`README.md: no code block in "The home Postfix"`)
	}
	settings := make(map[string]string)
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("README.md, The home Postfix: %q is not a main.cf setting", line)
		}
		settings[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	want := map[string]*regexp.Regexp{
		"relayhost":               regexp.MustCompile(`^\[[^]]+\]:465$`),
		"smtp_tls_wrappermode":    regexp.MustCompile(`^yes$`),
		"smtp_tls_security_level": regexp.MustCompile(`^encrypt$`),
		"smtp_sasl_auth_enable":   regexp.MustCompile(`^yes$`),
		"smtp_sasl_password_maps": regexp.MustCompile(`^hash:/etc/postfix/sasl_passwd$`),
	}
	for name, re := range want {
		if !re.MatchString(settings[name]) {
			t.Errorf("README.md, The home Postfix: %s = %q, want %s", name, settings[name], re)
		}
	}
	return settings
}

// homePostfixOptions configures the home Postfix as the README says,
// relaying to smarthost's implicit-TLS submission port at submissions:
// every main.cf setting of the guide, over Postfix's own defaults for
// what the guide leaves out (not interop's choices). Only two values are
// the test's: relayhost names the test's smarthost, and the password map
// is a texthash file in the instance's directory holding the line the
// guide writes into sasl_passwd ("[host]:465 home:PASSWORD").
func homePostfixOptions(t *testing.T, submissions string) interop.PostfixOptions {
	t.Helper()
	relayhost := "[127.0.0.1]:" + port(submissions)
	// Postfix's defaults for the settings interop.PostfixRelay would
	// otherwise derive from User: the guide must set what it needs.
	main := map[string]string{
		"smtp_sasl_auth_enable":          "no",
		"smtp_sasl_security_options":     "noplaintext, noanonymous",
		"smtp_sasl_tls_security_options": "$smtp_sasl_security_options",
	}
	for name, value := range readmeHomePostfix(t) {
		switch name {
		case "relayhost":
			main[name] = relayhost
		case "smtp_sasl_password_maps":
			// interop's texthash map, keyed by relayhost.
		default:
			main[name] = value
		}
	}
	return interop.PostfixOptions{
		Listen:   "127.0.0.1:0",
		Hostname: homeServer,
		Domains:  []string{homeDomain},
		Relay:    interop.PostfixRelay{Host: relayhost, User: homeUser, Password: homePassword},
		Main:     main,
	}
}

// dsn is a delivery status notification taken apart.
type dsn struct {
	types      []string // the Content-Types of the parts, in order
	message    textproto.MIMEHeader
	recipients []textproto.MIMEHeader
	original   []byte // the returned message or header
}

// parseDSN parses an RFC 3464 DSN with go-message.
func parseDSN(t *testing.T, data []byte) dsn {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, data)
	}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %q %v (%v), want multipart/report; report-type=delivery-status", ct, params, err)
	}
	var d dsn
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		pt, _, _ := p.Header.ContentType()
		d.types = append(d.types, pt)
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("DSN part %s: %v", pt, err)
		}
		switch pt {
		case "message/delivery-status":
			groups := statusGroups(t, body)
			if len(groups) == 0 {
				t.Fatalf("empty delivery-status part")
			}
			d.message, d.recipients = groups[0], groups[1:]
		case "text/rfc822-headers", "message/rfc822-headers", "message/rfc822":
			d.original = body
		}
	}
	return d
}
