package main

// Helpers of the end-to-end tests that run whole mail flows through real
// programs (e2e_inbound_test.go, e2e_home_test.go): signing with dkimpy as
// an outside sender's MTA would, reading what a Postfix instance put in its
// mailbox, and taking apart the trace fields smarthost and Postfix
// prepend.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smarthost/relay/interop"
)

// dkimpySignScript runs under Debian's python3 with dkimpy. It reads a
// list of {"msg": base64, "key": PEM file, "domain", "selector"} and
// prints, per message, the DKIM-Signature field dkimpy made for it
// (relaxed/simple, rsa-sha256), base64-encoded.
const dkimpySignScript = `
import base64, json, sys
import dkim

out = []
for m in json.load(sys.stdin):
    with open(m["key"], "rb") as f:
        key = f.read()
    sig = dkim.sign(base64.b64decode(m["msg"]), m["selector"].encode(), m["domain"].encode(), key,
                    canonicalize=(b"relaxed", b"simple"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    out.append(base64.b64encode(sig).decode())
json.dump(out, sys.stdout)
`

// dkimpySignRequest is one message for [dkimpySign].
type dkimpySignRequest struct {
	Msg      []byte `json:"msg"` // the message as sent, CRLF line ends
	Key      string `json:"key"` // PEM private key file, as dkim.Keygen writes it
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
}

// dkimpySign signs each message with dkimpy — an implementation other than
// the go-msgauth verifier smarthost uses — and returns the DKIM-Signature
// fields to prepend, CRLF line ends.
func dkimpySign(t *testing.T, reqs []dkimpySignRequest) [][]byte {
	t.Helper()
	py := interop.RequireDKIMPy(t)
	in, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", dkimpySignScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy sign: %v\n%s", err, stderr.String())
	}
	var sigs [][]byte
	if err := json.Unmarshal(out, &sigs); err != nil || len(sigs) != len(reqs) {
		t.Fatalf("dkimpy sign: output %q: %v; want %d signatures", out, err, len(reqs))
	}
	for i, s := range sigs {
		if !bytes.HasPrefix(s, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(s, []byte("\r\n")) {
			t.Fatalf("dkimpy sign: signature %d is %q, want one DKIM-Signature field", i, s)
		}
	}
	return sigs
}

// crlf turns a Maildir file (LF line ends, as Postfix stores mail) back
// into the form it had on the wire.
func crlf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }

// lf is the form a message sent as b has in a Maildir file.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// byMessageID indexes a mailbox by Message-ID, failing the test if one
// arrived twice: mail must arrive exactly once.
func byMessageID(t *testing.T, msgs []interop.Delivered) map[string]interop.Delivered {
	t.Helper()
	m := make(map[string]interop.Delivered)
	for _, d := range msgs {
		id := d.Header.Get("Message-ID")
		if _, dup := m[id]; dup {
			t.Errorf("message %s delivered twice", id)
		}
		m[id] = d
	}
	return m
}

// fieldNames lists the names of the header fields in header, in order.
// header is in wire form (CRLF); continuation lines are skipped.
func fieldNames(header []byte) []string {
	var names []string
	for _, line := range strings.Split(string(header), "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
	return names
}

// prependedTo returns what was added in front of sent in delivered (both
// in wire form), or ok false when delivered does not end with sent byte
// for byte.
func prependedTo(delivered, sent []byte) (prefix []byte, ok bool) {
	if !bytes.HasSuffix(delivered, sent) {
		return nil, false
	}
	return delivered[:len(delivered)-len(sent)], true
}

// authResults splits an Authentication-Results value (unfolded) into its
// authserv-id and its results (RFC 8601 §2.2), each result with its
// whitespace collapsed, e.g. "dkim=pass header.d=example.test".
// Semicolons inside quoted strings do not split.
func authResults(v string) (authservID string, results []string) {
	var parts []string
	var cur strings.Builder
	quoted := false
	for _, c := range v {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(c)
	}
	parts = append(parts, cur.String())
	for i, p := range parts {
		parts[i] = strings.Join(resultTokens(p), " ")
	}
	return parts[0], parts[1:]
}

// resultTokens splits one result into "method=value" and its properties,
// keeping quoted strings whole.
func resultTokens(r string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, c := range r {
		if c == '"' {
			quoted = !quoted
		}
		if !quoted && (c == ' ' || c == '\t') {
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(c)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// resultMatches reports whether got, one result from [authResults], is
// want: the same "method=value" first, and every property of want among
// got's (got may have more, such as header.b or a reason).
func resultMatches(got, want string) bool {
	g, w := resultTokens(got), resultTokens(want)
	if len(g) == 0 || len(w) == 0 || g[0] != w[0] {
		return false
	}
	for _, tok := range w[1:] {
		found := false
		for _, h := range g[1:] {
			found = found || h == tok
		}
		if !found {
			return false
		}
	}
	return true
}

// checkAuthResults checks an Authentication-Results value: our hostname
// as authserv-id and, in order, one result matching each of want.
func checkAuthResults(t *testing.T, what, value, hostname string, want []string) {
	t.Helper()
	id, results := authResults(value)
	ok := id == hostname && len(results) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = resultMatches(results[i], want[i])
	}
	if !ok {
		t.Errorf("%s: Authentication-Results: %s\nwant: %s; %s", what, value, hostname, strings.Join(want, "; "))
	}
}

// writeMessage writes text, LF line ends, to a file for swaks --data and
// returns the "@file" argument.
func writeMessage(t *testing.T, dir, name string, text []byte) string {
	t.Helper()
	path := filepath.Join(dir, name+".eml")
	if err := os.WriteFile(path, lf(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return "@" + path
}

// certFiles makes a self-signed certificate for name, for a Postfix
// instance's smtpd, and returns the PEM files.
func certFiles(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// trySend sends one message over plain SMTP as an outside MTA would and
// returns the reply that refused it, or nil when it was queued. Unlike
// [submit] it does not fail the test on a refusal, so a test can retry.
func trySend(addr, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = e2eTimeout, e2eTimeout
	if err := c.Hello("client.outside.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// dialE2E connects to addr for a raw dialogue, with every read and write
// bounded by e2eTimeout; the connection is closed when the test ends.
func dialE2E(t *testing.T, addr string) *textproto.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, e2eTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(e2eTimeout))
	return textproto.NewConn(conn)
}

// replyOf is the SMTP reply in err as "code enhanced text", or err itself
// when it is not a reply.
func replyOf(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e := se.EnhancedCode
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message)
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
