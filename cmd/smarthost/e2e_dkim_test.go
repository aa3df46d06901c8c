package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smarthost/relay/dkim"
	"smarthost/relay/interop"
	"smarthost/relay/sink"
)

// dkimpyVerifyScript runs under Debian's python3 with dkimpy
// (python3-dkim) and dnspython. It reads {"dns": "host:port", "messages":
// [{"msg": base64, "n": count}]} and verifies the first n DKIM-Signature
// fields of each message, looking the keys up in DNS at the given server,
// as dkimpy's own get_txt_dnspython does with the system resolver. It
// prints, per message, a list of {"ok", "log"} per signature.
const dkimpyVerifyScript = `
import base64, json, logging, sys
import dkim, dns.rdatatype, dns.resolver

req = json.load(sys.stdin)
host, port = req["dns"].rsplit(":", 1)
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [host]
resolver.port = int(port)

def dnsfunc(name, timeout=5):
    try:
        a = resolver.resolve(name.decode(), dns.rdatatype.TXT, raise_on_no_answer=False, lifetime=timeout, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    for r in a.response.answer:
        if r.rdtype == dns.rdatatype.TXT:
            return b"".join(list(r.items)[0].strings)
    return None

class Log(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
    def emit(self, record):
        self.lines.append(record.getMessage())

out = []
for i, m in enumerate(req["messages"]):
    msg = base64.b64decode(m["msg"])
    res = []
    for idx in range(m["n"]):
        h = Log()
        log = logging.getLogger("dkimpy.%d.%d" % (i, idx))
        log.handlers = [h]
        log.setLevel(logging.DEBUG)
        try:
            ok = dkim.DKIM(msg, logger=log).verify(idx=idx, dnsfunc=dnsfunc)
        except Exception as e:
            ok = False
            h.lines.append("exception: %r" % e)
        res.append({"ok": bool(ok), "log": "; ".join(h.lines[-3:])})
    out.append(res)
json.dump(out, sys.stdout)
`

type dkimpyInput struct {
	Msg []byte `json:"msg"` // base64 in JSON
	N   int    `json:"n"`
}

type dkimpyVerdict struct {
	OK  bool   `json:"ok"`
	Log string `json:"log"`
}

// dkimpyVerify verifies each message's first n signatures with dkimpy,
// which fetches the keys from the DNS server at dnsAddr.
func dkimpyVerify(t *testing.T, dnsAddr string, msgs []dkimpyInput) [][]dkimpyVerdict {
	t.Helper()
	py := interop.RequireDKIMPy(t)
	if err := exec.Command(py, "-c", "import dns.resolver").Run(); err != nil {
		if interop.InCI() {
			t.Fatalf("dnspython is not importable by %s (Debian package python3-dnspython): %v", py, err)
		}
		t.Skipf("skipping: dnspython is not importable by %s (Debian package python3-dnspython)", py)
	}
	req, err := json.Marshal(map[string]any{"dns": dnsAddr, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", dkimpyVerifyScript)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, stderr.String())
	}
	var res [][]dkimpyVerdict
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("dkimpy output %q: %v", out, err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("dkimpy answered for %d messages, want %d", len(res), len(msgs))
	}
	return res
}

// signedDomain is the configured signing domain of the DKIM tests.
const signedDomain = "signed.e2e.test"

// dkimMessages returns the messages of issue 4 that must verify with dkimpy,
// as a user would write them into a file for swaks: LF line ends (swaks
// sends CRLF), and one without a final newline, which reaches smarthost
// as swaks sends it (see wireForm).
func dkimMessages() []struct{ name, text string } {
	return []struct{ name, text string }{
		{"folded headers", "From: \"Alice Example\"\n <alice@signed.e2e.test>\n" +
			"To: Bob <bob@rcpt.e2e.test>,\n\tCarol <carol@rcpt.e2e.test>\n" +
			"Subject: a subject folded\n   over  three\t lines\n   with odd   whitespace \n" +
			"Date: Sat, 21 Nov 2026 06:00:00 +0000\nMessage-ID: <folded@signed.e2e.test>\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain;\n\tcharset=us-ascii\n\n" +
			"Folded headers, relaxed header canonicalization.\n"},
		{"8-bit UTF-8 body", "From: alice@signed.e2e.test\nTo: bob@rcpt.e2e.test\n" +
			"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\nDate: Sat, 21 Nov 2026 06:00:00 +0000\n" +
			"Message-ID: <8bit@signed.e2e.test>\nMIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
			"Grüße aus Köln — 日本語のテキスト — ünïcödé 🙂\n  trailing  spaces   \n\n\n"},
		{"lines longer than 998 octets", "From: alice@signed.e2e.test\nTo: bob@rcpt.e2e.test\n" +
			"Subject: long lines\nDate: Sat, 21 Nov 2026 06:00:00 +0000\nMessage-ID: <long@signed.e2e.test>\n\n" +
			strings.Repeat("0123456789", 300) + "\n" + strings.Repeat("word  ", 250) + "\nshort\n"},
		{"no final newline", "From: alice@signed.e2e.test\nTo: bob@rcpt.e2e.test\n" +
			"Subject: no final newline\nDate: Sat, 21 Nov 2026 06:00:00 +0000\nMessage-ID: <nonl@signed.e2e.test>\n\n" +
			"first line\n\nthe last line has no newline   "},
		{"dot-stuffed lines and trailing blank lines", "From: alice@signed.e2e.test\nTo: bob@rcpt.e2e.test\n" +
			"Subject: dots\nDate: Sat, 21 Nov 2026 06:00:00 +0000\nMessage-ID: <dots@signed.e2e.test>\n\n" +
			".\n..\n.leading dot\n\n\n\n"},
	}
}

// wireForm is text as swaks sends it: LF becomes CRLF, and swaks ends
// the data with CRLF "." CRLF whether or not the text ends in a newline,
// so the message always gains one CRLF at its end.
func wireForm(text string) []byte {
	return []byte(strings.ReplaceAll(text, "\n", "\r\n") + "\r\n")
}

// TestE2E_DKIMPyVerifiesSubmittedMail is issue 4's "every message submitted
// through smarthost for a configured domain verifies with dkimpy": swaks
// submits each message with AUTH over implicit TLS to a smarthost with an
// RSA-2048 and an Ed25519 key for the From domain, under relaxed/simple and
// under relaxed/relaxed; the message that reaches the next hop carries both
// signatures, its original bytes unchanged after the headers smarthost
// prepends, and dkimpy verifies both, fetching the public keys from the TXT
// records a real DNS server (dnsmasq) publishes. A copy with one body byte
// changed must not verify, so a verifier that accepts anything is caught.
func TestE2E_DKIMPyVerifiesSubmittedMail(t *testing.T) {
	t.Parallel()
	interop.Require(t, "swaks", "dnsmasq")
	interop.RequireDKIMPy(t)
	dir := t.TempDir()

	type setup struct {
		canon string
		keys  []e2eKey
		next  *sink.Sink
		srv   *e2eServer
	}
	setups := []*setup{{canon: "relaxed/simple"}, {canon: "relaxed/relaxed"}}
	txt := make(map[string][]string)
	for i, s := range setups {
		s.keys = []e2eKey{
			newKey(t, dir, signedDomain, fmt.Sprintf("rsa%d", i), dkim.KindRSA2048),
			newKey(t, dir, signedDomain, fmt.Sprintf("ed%d", i), dkim.KindEd25519),
		}
		for _, k := range s.keys {
			txt[k.recordName()] = []string{k.Record}
		}
	}
	dns := interop.StartDNS(t, interop.Zone{Domains: []string{"e2e.test"}, TXT: txt})

	for _, s := range setups {
		var nextAddr string
		s.next, nextAddr = startSink(t, sink.Options{})
		c := submissionConfig(t, nextAddr)
		c.Keys, c.Canonicalization = s.keys, s.canon
		s.srv = startRelay(t, c, nil)
	}

	messages := dkimMessages()
	msgFiles := make([]string, len(messages))
	for i, m := range messages {
		msgFiles[i] = filepath.Join(dir, fmt.Sprintf("msg%d.eml", i))
		if err := os.WriteFile(msgFiles[i], []byte(m.text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range setups {
		for i, m := range messages {
			res := runSwaks(t, "--server", "127.0.0.1", "--port", port(s.srv.addr("submissions")), "--tls-on-connect",
				"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "correct horse battery staple",
				"--from", "alice@"+signedDomain, "--to", "bob@rcpt.e2e.test", "--data", "@"+msgFiles[i])
			if res.Exit != 0 || !res.HasReply("250 2.0.0 Ok: queued as") {
				t.Fatalf("%s, %s: swaks exit status %d, want 0 and the message queued:\n%s", s.canon, m.name, res.Exit, res.Transcript)
			}
		}
	}

	type delivered struct {
		canon, name string
		data        []byte
	}
	var all []delivered
	var inputs []dkimpyInput
	for _, s := range setups {
		byID := make(map[string][]byte)
		for _, m := range waitMessages(t, s.next, len(messages)) {
			byID[headerOf(m.Data, "Message-ID")] = m.Data
		}
		for _, m := range messages {
			id := headerOf(wireForm(m.text), "Message-ID")
			data, ok := byID[id]
			if !ok {
				t.Errorf("%s, %s: %s was not delivered", s.canon, m.name, id)
				continue
			}
			if want := wireForm(m.text); !bytes.HasSuffix(data, want) {
				t.Errorf("%s, %s: delivered message does not end with the message as submitted\ngot:  %q\nwant: …%q", s.canon, m.name, data, want)
			}
			checkSignatureTags(t, s.canon+", "+m.name, data, s.canon, s.keys)
			all = append(all, delivered{s.canon, m.name, data})
			inputs = append(inputs, dkimpyInput{Msg: data, N: len(s.keys)})
		}
	}
	if len(all) == 0 {
		t.Fatal("nothing was delivered")
	}
	// The control: one body byte changed after signing.
	tampered := bytes.Replace(all[0].data, []byte("relaxed header canonicalization"), []byte("relaxed header canonicalizatioN"), 1)
	if bytes.Equal(tampered, all[0].data) {
		t.Fatalf("control: the first message %q lacks the text to change", all[0].name)
	}
	inputs = append(inputs, dkimpyInput{Msg: tampered, N: 2})

	verdicts := dkimpyVerify(t, dns.Addr, inputs)
	for i, d := range all {
		for j, v := range verdicts[i] {
			if !v.OK {
				t.Errorf("%s, %s: dkimpy verify(signature %d) = false, want true; dkimpy said: %s", d.canon, d.name, j, v.Log)
			}
		}
	}
	for j, v := range verdicts[len(all)] {
		if v.OK {
			t.Errorf("control, body changed after signing: dkimpy verify(signature %d) = true, want false", j)
		}
	}
}

// checkSignatureTags checks the DKIM-Signature fields of a delivered
// message: one per key, in key order, each with d=, s=, the algorithm of
// its key, the configured c= and no l= (DESIGN: never a body length).
func checkSignatureTags(t *testing.T, what string, msg []byte, canon string, keys []e2eKey) {
	t.Helper()
	sigs := headerValues(msg, "DKIM-Signature")
	if len(sigs) != len(keys) {
		t.Errorf("%s: %d DKIM-Signature fields, want %d", what, len(sigs), len(keys))
		return
	}
	for i, k := range keys {
		tags := dkimTags(sigs[i])
		alg := "rsa-sha256"
		if strings.HasPrefix(k.Selector, "ed") {
			alg = "ed25519-sha256"
		}
		want := map[string]string{"d": k.Domain, "s": k.Selector, "a": alg, "c": canon}
		for name, w := range want {
			if tags[name] != w {
				t.Errorf("%s: signature %d has %s=%q, want %q", what, i, name, tags[name], w)
			}
		}
		if _, ok := tags["l"]; ok {
			t.Errorf("%s: signature %d has an l= tag", what, i)
		}
	}
}

// dkimTags parses a DKIM-Signature value into its tags, whitespace removed.
func dkimTags(v string) map[string]string {
	tags := make(map[string]string)
	for _, part := range strings.Split(v, ";") {
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		tags[strings.TrimSpace(name)] = strings.Join(strings.Fields(value), "")
	}
	return tags
}
