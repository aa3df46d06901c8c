package dkim

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"smarthost/relay/interop"
)

// dkimpyVerify is run by Debian's python3 with dkimpy (python3-dkim). It
// reads {"records": {name: txt}, "messages": [{"msg": bytes, "n": count}]}
// and verifies the first n DKIM-Signature fields of each message, answering
// TXT queries from records only: no network. It prints, per message, a list
// of [ok, log] per signature.
const dkimpyVerify = `
import base64, json, logging, sys, dkim

class Log(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
    def emit(self, record):
        self.lines.append(record.getMessage())

req = json.load(sys.stdin)
recs = {k.encode(): v.encode() for k, v in req["records"].items()}

def dnsfunc(name, timeout=5):
    return recs.get(name.rstrip(b"."))

out = []
for m in req["messages"]:
    msg = base64.b64decode(m["msg"])
    res = []
    for i in range(m["n"]):
        h = Log()
        log = logging.getLogger("dkimpy%d" % len(out))
        log.handlers = [h]
        log.setLevel(logging.DEBUG)
        try:
            ok = dkim.DKIM(msg, logger=log).verify(idx=i, dnsfunc=dnsfunc)
        except Exception as e:
            ok = False
            h.lines.append("exception: %r" % e)
        res.append([bool(ok), "; ".join(h.lines[-3:])])
    out.append(res)
json.dump(out, sys.stdout)
`

type dkimpyMessage struct {
	Msg []byte `json:"msg"` // base64 in JSON
	N   int    `json:"n"`
}

type dkimpyResult struct {
	OK  bool
	Log string
}

// verifyDKIMPy verifies the first n signatures of each message with dkimpy.
func verifyDKIMPy(t *testing.T, recs map[string]string, msgs []dkimpyMessage) [][]dkimpyResult {
	t.Helper()
	py := interop.RequireDKIMPy(t)
	req, err := json.Marshal(map[string]any{"records": recs, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", dkimpyVerify)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, stderr.String())
	}
	var raw [][][2]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("dkimpy output %q: %v", out, err)
	}
	res := make([][]dkimpyResult, len(raw))
	for i, m := range raw {
		for _, r := range m {
			ok, _ := r[0].(bool)
			log, _ := r[1].(string)
			res[i] = append(res[i], dkimpyResult{ok, log})
		}
	}
	return res
}

// TestSign_VerifiesWithDKIMPy checks every corpus message, signed with RSA
// and Ed25519 under every canonicalization, with dkimpy: an implementation
// that shares no code with ours or go-msgauth's.
func TestSign_VerifiesWithDKIMPy(t *testing.T) {
	t.Parallel()
	type signedCase struct{ canon, name string }
	var cases []signedCase
	var msgs []dkimpyMessage
	recs := map[string]string{}
	for _, canon := range canonicalizations {
		tab := newTable(t, canon, rsaAndEd()...)
		for k, v := range records(tab) {
			recs[k] = v
		}
		for _, m := range corpus() {
			signed, _ := signMessage(t, tab, []byte(m.msg), 7)
			cases = append(cases, signedCase{canon, m.name})
			msgs = append(msgs, dkimpyMessage{Msg: wireForm(signed), N: 2})
		}
	}
	// A control: a signature that must not verify, so a dkimpy that
	// says yes to everything is caught.
	tab := newTable(t, "relaxed/simple", rsaAndEd()...)
	signed, _ := signMessage(t, tab, []byte(corpus()[0].msg), 7)
	cases = append(cases, signedCase{"relaxed/simple", "control: body changed"})
	msgs = append(msgs, dkimpyMessage{Msg: bytes.Replace(signed, []byte("Hello Bob."), []byte("Hello Eve."), 1), N: 2})

	res := verifyDKIMPy(t, recs, msgs)
	if len(res) != len(cases) {
		t.Fatalf("dkimpy answered for %d messages, want %d", len(res), len(cases))
	}
	for i, c := range cases {
		want := c.name[:min(len(c.name), 8)] != "control:"
		for j, r := range res[i] {
			if r.OK != want {
				t.Errorf("%s, %s: dkimpy verify(signature %d) = %v, want %v; dkimpy said: %s", c.canon, c.name, j, r.OK, want, r.Log)
			}
		}
	}
}
