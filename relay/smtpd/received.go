package smtpd

import (
	"crypto/tls"
	"strings"
	"time"
)

// receivedHeader builds our trace field (RFC 5321 §4.4) in Postfix's
// layout, so tools that parse Postfix Received lines read ours too:
//
//	Received: from HELO (unknown [IP])
//		(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits))
//		(Authenticated sender: USER)
//		by HOSTNAME (smarthost) with ESMTPSA id QUEUEID
//		for <RCPT>; DATE
//
// "for" is written only for a single recipient, as Postfix does, so Bcc
// recipients are not disclosed. We do no reverse DNS lookup per connection,
// so the client name is "unknown", as Postfix writes it when there is no
// PTR. The protocol keyword follows RFC 3848 and RFC 6531 (UTF8SMTP…).
func receivedHeader(r receivedInfo) []byte {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitizeHelo(r.helo))
	b.WriteString(" (unknown [")
	b.WriteString(r.clientIP)
	b.WriteString("])")
	if r.tls != nil {
		b.WriteString("\r\n\t(using ")
		b.WriteString(tlsVersionName(r.tls.Version))
		b.WriteString(" with cipher ")
		b.WriteString(tls.CipherSuiteName(r.tls.CipherSuite))
		bits := cipherBits(r.tls.CipherSuite)
		b.WriteString(" (" + bits + "/" + bits + " bits))")
	}
	if r.user != "" {
		b.WriteString("\r\n\t(Authenticated sender: ")
		b.WriteString(r.user)
		b.WriteString(")")
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(r.hostname)
	b.WriteString(" (smarthost) with ")
	b.WriteString(protocol(r))
	b.WriteString(" id ")
	b.WriteString(r.queueID)
	if len(r.rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(r.rcpts[0])
		b.WriteString(">")
	}
	b.WriteString("; ")
	b.WriteString(r.now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return []byte(b.String())
}

type receivedInfo struct {
	helo, clientIP, hostname, user, queueID string
	tls                                     *tls.ConnectionState
	esmtp, utf8                             bool
	rcpts                                   []string
	now                                     time.Time
}

// protocol returns the with-protocol keyword of RFC 3848 / RFC 6531.
func protocol(r receivedInfo) string {
	p := "SMTP"
	if r.esmtp {
		p = "ESMTP"
	}
	if r.utf8 {
		p = "UTF8SMTP"
	}
	if r.tls != nil {
		p += "S"
	}
	if r.user != "" {
		p += "A"
	}
	return p
}

// sanitizeHelo keeps the HELO argument from breaking the header: it is
// client-supplied text.
func sanitizeHelo(h string) string {
	if h == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r == 0x7f || r == '(' || r == ')' || r == ';' {
			return '_'
		}
		return r
	}, h)
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	}
	return tls.VersionName(v)
}

// cipherBits is the symmetric key size of the suites our listeners allow.
func cipherBits(suite uint16) string {
	name := tls.CipherSuiteName(suite)
	switch {
	case strings.Contains(name, "AES_128"):
		return "128"
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return "256"
	}
	return "0"
}
