package main

// The setup of the inbound end-to-end tests (e2e_inbound_test.go): the
// senders' DNS, their keys, the home Postfix and smarthost as the home
// domain's MX.

import (
	"path/filepath"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/interop"
)

const (
	// homeDomain is the home domain: a relay domain of smarthost, whose
	// mail the home Postfix keeps.
	homeDomain = "home.test"
	// homeServer is the home Postfix's myhostname.
	homeServer = "server.home.test"
	// quarantineField is inbound.quarantine_header in these tests.
	quarantineField = "X-Spam-Flag: YES"
)

// inboundEnv is what the inbound tests share: the senders' DNS, the
// senders' signing keys and the home Postfix.
type inboundEnv struct {
	dns *interop.DNS
	// key is good.test's DKIM key s1, published; wrongKey claims to be
	// s1 of good.test too, but its public key is not the one published.
	key, wrongKey e2eKey
	home          *interop.Postfix
}

// startInboundEnv starts dnsmasq with the senders' records and the home
// Postfix, receiving for homeDomain; with recipients, only those exist
// there and Postfix refuses others with 550 5.1.1.
//
// Each sender domain is a registrable domain of its own, so DMARC's
// relaxed alignment treats them as strangers (two names under one
// e2e.test would share an Organizational Domain):
//
//	good.test        SPF: 127.0.0.1 only, -all; DKIM key s1; DMARC p=reject
//	spffail.test     SPF: 192.0.2.1 only, -all; no DMARC record
//	softfail.test    SPF: 192.0.2.1 only, ~all; no DMARC record
//	quarantine.test  no SPF record; DMARC p=quarantine
//	plain.test       no records at all
//	refused.test     not served: dnsmasq refuses every query (temperror)
//	bl.test          a blocklist listing 127.0.0.1; clean.test lists nobody
func startInboundEnv(t *testing.T, recipients ...string) inboundEnv {
	t.Helper()
	dir := t.TempDir()
	env := inboundEnv{
		key:      newKey(t, dir, "good.test", "s1", dkim.KindRSA2048),
		wrongKey: newKey(t, filepath.Join(dir, "wrong"), "good.test", "s1", dkim.KindRSA2048),
	}
	env.dns = interop.StartDNS(t, interop.Zone{
		Domains: []string{"good.test", "spffail.test", "softfail.test", "quarantine.test", "plain.test",
			homeDomain, "bl.test", "clean.test"},
		MX: map[string][]string{homeDomain: {"10 " + e2eHostname}},
		// RFC 5782 §2.1: a listed IPv4 client has an A record under the
		// zone with its octets reversed, conventionally 127.0.0.2.
		Hosts: map[string][]string{"1.0.0.127.bl.test": {"127.0.0.2"}},
		TXT: map[string][]string{
			"good.test":              {"v=spf1 ip4:127.0.0.1 -all"},
			env.key.recordName():     {env.key.Record},
			"_dmarc.good.test":       {"v=DMARC1; p=reject"},
			"spffail.test":           {"v=spf1 ip4:192.0.2.1 -all"},
			"softfail.test":          {"v=spf1 ip4:192.0.2.1 ~all"},
			"_dmarc.quarantine.test": {"v=DMARC1; p=quarantine"},
			"1.0.0.127.bl.test":      {"127.0.0.1 is listed for this test"},
		},
	})
	env.home = interop.StartPostfix(t, interop.PostfixOptions{
		Listen:     "127.0.0.1:0",
		Hostname:   homeServer,
		Domains:    []string{homeDomain},
		Recipients: recipients,
	})
	return env
}

// mxConfig is smarthost as the MX of homeDomain: one mx listener offering
// STARTTLS, and the transport entry that forwards homeDomain to the home
// Postfix. Nobody is trusted, so every client is an outside MTA.
func (env inboundEnv) mxConfig(t *testing.T) e2eConfig {
	return e2eConfig{
		Dir:          t.TempDir(),
		RelayDomains: []string{homeDomain},
		Listeners:    []e2eListener{{Name: "smtp", TLS: "starttls", Role: "mx"}},
		Transport:    map[string]string{homeDomain: nextHop(env.home.Addr)},
		DNS:          env.dns.Addr,
	}
}

// inboundMessage is a message from an outside sender to user@home.test,
// CRLF line ends. It has a Date and a Message-ID, so Postfix adds no
// header field of its own below smarthost's.
func inboundMessage(from, id, subject string) []byte {
	return []byte("From: " + from + "\r\nTo: user@" + homeDomain + "\r\nSubject: " + subject +
		"\r\nDate: Sat, 21 Nov 2026 06:00:00 +0000\r\nMessage-ID: <" + id + ">\r\n\r\nHello from " + from + ".\r\n")
}

// dialMX opens a plain-text session with the mx listener at addr, as an
// outside MTA, and says EHLO.
func dialMX(t *testing.T, addr string) *dialogue {
	t.Helper()
	conn := dialE2E(t, addr)
	d := &dialogue{t: t, tp: conn}
	d.expect(220, "")
	d.cmd("EHLO client.outside.test", 250)
	return d
}
