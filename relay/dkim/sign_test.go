package dkim

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

var canonicalizations = []string{"relaxed/simple", "relaxed/relaxed", "simple/simple", "simple/relaxed"}

func TestSign_VerifiesWithGoMsgauth(t *testing.T) {
	t.Parallel()
	for _, canon := range canonicalizations {
		tab := newTable(t, canon, rsaAndEd()...)
		recs := records(tab)
		for _, m := range corpus() {
			// 7-byte chunks split CRLFs and white space runs across
			// writes, as TCP reads do.
			for _, chunk := range []int{7, 1 << 20} {
				signed, sigs := signMessage(t, tab, []byte(m.msg), chunk)
				for _, form := range [][]byte{signed, wireForm(signed)} {
					ok, errs := verifyGo(t, form, recs, testDomain)
					if ok != 2 || len(errs) > 0 {
						t.Errorf("%s, %s, chunks of %d: %d of 2 signatures verified; errors %v\n%s", canon, m.name, chunk, ok, errs, form)
					}
				}
				if got, want := strings.Join(sigs.Selectors, ","), "rsa,ed"; got != want || sigs.Domain != testDomain {
					t.Errorf("%s, %s: Finish() selectors %q, domain %q; want %q, %q", canon, m.name, got, sigs.Domain, want, testDomain)
				}
			}
		}
	}
}

func TestSign_FieldShape(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "relaxed/simple", rsaAndEd()...)
	for _, m := range corpus() {
		_, sigs := signMessage(t, tab, []byte(m.msg), 1<<20)
		h := string(sigs.Header)
		if !strings.HasSuffix(h, "\r\n") {
			t.Errorf("%s: signature header does not end in CRLF: %q", m.name, h)
		}
		for _, line := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
			if len(line) > maxLineLength {
				t.Errorf("%s: line of %d characters, want at most %d: %q", m.name, len(line), maxLineLength, line)
			}
			if strings.ContainsAny(line, "\r\n") {
				t.Errorf("%s: bare CR or LF in %q", m.name, line)
			}
		}
		tags := sigTags(t, sigs.Header)
		if len(tags) != 2 {
			t.Fatalf("%s: %d DKIM-Signature fields, want 2", m.name, len(tags))
		}
		for i, want := range []string{"rsa-sha256", "ed25519-sha256"} {
			tg := tags[i]
			if tg["a"] != want || tg["c"] != "relaxed/simple" || tg["d"] != testDomain || tg["v"] != "1" {
				t.Errorf("%s: signature %d tags a=%s c=%s d=%s v=%s; want a=%s c=relaxed/simple d=%s v=1", m.name, i, tg["a"], tg["c"], tg["d"], tg["v"], want, testDomain)
			}
			if got, want := tg["t"], strconv.Itoa(testTime); got != want {
				t.Errorf("%s: t=%s, want %s", m.name, got, want)
			}
			if l, ok := tg["l"]; ok {
				t.Errorf("%s: l=%s present; a body length limit must never be set", m.name, l)
			}
		}
	}
}

func TestSign_HeaderList(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "", keySpec{selector: "rsa", file: rsaKeyFile})
	tests := []struct {
		name   string
		header string
		want   string
	}{
		{"minimal: From, To, Subject, Cc oversigned even when absent",
			lines("From: a@example.test", ""),
			"from:from:reply-to:subject:to:cc"},
		{"each field as often as present, plus one for the oversigned",
			lines("From: a@example.test", "To: x@example.invalid", "To: y@example.invalid", "Subject: s",
				"Date: d", "Message-ID: <m@example.test>", "Reply-To: r@example.test", ""),
			"from:from:reply-to:reply-to:subject:subject:date:to:to:to:cc:message-id"},
		{"case of names does not matter; trace and unknown fields are not signed",
			lines("Received: r", "FROM: a@example.test", "x-mailer: m", "content-TYPE: text/plain", "Return-Path: <a@example.test>", "DKIM-Signature: v=1", ""),
			"from:from:reply-to:subject:to:cc:content-type"},
		{"MIME, Resent and List fields",
			lines("From: a@example.test", "MIME-Version: 1.0", "Content-Transfer-Encoding: 8bit", "Resent-To: r@example.invalid",
				"List-Unsubscribe: <mailto:u@example.test>", "List-Unsubscribe-Post: List-Unsubscribe=One-Click", ""),
			"from:from:reply-to:subject:to:cc:mime-version:content-transfer-encoding:resent-to:list-unsubscribe:list-unsubscribe-post"},
	}
	for _, tt := range tests {
		s, err := tab.Signer([]byte(tt.header), "a@example.test")
		if err != nil {
			t.Fatalf("%s: Signer: %v", tt.name, err)
		}
		if got := strings.Join(s.names, ":"); got != tt.want {
			t.Errorf("%s: h=%s\nwant h=%s", tt.name, got, tt.want)
		}
	}
}

// TestSign_TamperingBreaksSignature shows what the signature protects: the
// oversigned fields cannot be added even where they were absent, the body
// cannot change, and fields we do not sign can be added by relays.
func TestSign_TamperingBreaksSignature(t *testing.T) {
	t.Parallel()
	msg := corpus()[0].msg // plain: no Cc, no Reply-To
	for _, canon := range canonicalizations {
		tab := newTable(t, canon, rsaAndEd()...)
		recs := records(tab)
		signed, sigs := signMessage(t, tab, []byte(msg), 1<<20)
		tests := []struct {
			name     string
			tampered string
			wantOK   int
		}{
			{"untouched", string(signed), 2},
			{"Received added by a relay", "Received: from x by y\r\n" + string(signed), 2},
			{"second From added on top", "From: evil@example.invalid\r\n" + string(signed), 0},
			{"second Subject added", "Subject: pay now\r\n" + string(signed), 0},
			{"absent Cc added", "Cc: victim@example.invalid\r\n" + string(signed), 0},
			{"absent Reply-To added", "Reply-To: evil@example.invalid\r\n" + string(signed), 0},
			{"second To added", string(sigs.Header) + "To: victim@example.invalid\r\n" + msg, 0},
			{"body changed", strings.Replace(string(signed), "Hello Bob.", "Hello Eve.", 1), 0},
			{"body appended", string(signed) + "P.S. send money\r\n", 0},
		}
		for _, tt := range tests {
			ok, _ := verifyGo(t, []byte(tt.tampered), recs, testDomain)
			if ok != tt.wantOK {
				t.Errorf("%s, %s: %d signatures verified, want %d", canon, tt.name, ok, tt.wantOK)
			}
		}
	}
}

func TestSign_ExistingSignatureKept(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "relaxed/simple", rsaAndEd()...)
	var msg string
	for _, m := range corpus() {
		if m.name == "existing signature" {
			msg = m.msg
		}
	}
	signed, sigs := signMessage(t, tab, []byte(msg), 1<<20)
	if got, want := string(signed), string(sigs.Header)+msg; got != want {
		t.Errorf("signed message is not signatures + original:\n%q\nwant\n%q", got, want)
	}
	if bytes.Contains(sigs.Header, []byte("foreign.invalid")) {
		t.Errorf("our signatures mention the existing one: %q", sigs.Header)
	}
	for _, tg := range sigTags(t, sigs.Header) {
		if strings.Contains(tg["h"], "dkim-signature") {
			t.Errorf("h=%s signs the existing DKIM-Signature", tg["h"])
		}
	}
}

func TestSigner_NoKeyMeansUnsigned(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "", keySpec{selector: "rsa", file: rsaKeyFile})
	s, err := tab.Signer([]byte(lines("From: a@other.invalid", "")), "a@other.invalid")
	if s != nil || err != nil {
		t.Errorf("Signer(a@other.invalid) = %v, %v; want nil, nil", s, err)
	}
}

func TestSigner_RequiresFromField(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "", keySpec{selector: "rsa", file: rsaKeyFile})
	_, err := tab.Signer([]byte(lines("Subject: no from", "")), "a@example.test")
	if !errors.Is(err, ErrNoFrom) {
		t.Errorf("Signer(header without From) error = %v, want ErrNoFrom", err)
	}
}

func TestSigner_UseAfterFinish(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "", keySpec{selector: "rsa", file: rsaKeyFile})
	s, err := tab.Signer([]byte(lines("From: a@example.test", "")), "a@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write after Finish succeeded, want an error")
	}
	if _, err := s.Finish(); err == nil {
		t.Error("second Finish succeeded, want an error")
	}
}
