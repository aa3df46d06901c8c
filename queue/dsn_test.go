package queue

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"smarthost/queue/mlog"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// dsnPart is one part of a parsed DSN.
type dsnPart struct {
	mediaType string
	header    gomessage.Header
	body      []byte
}

// parseDSN parses a DSN with go-message and returns its top-level header
// and parts.
func parseDSN(t *testing.T, raw []byte) (gomessage.Header, []dsnPart) {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message cannot read the DSN: %v\n%s", err, raw)
	}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type = %q %v, %v; want multipart/report; report-type=delivery-status", mt, params, err)
	}
	mr := e.MultipartReader()
	var parts []dsnPart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading DSN part %d: %v", len(parts), err)
		}
		pt, _, _ := p.Header.ContentType()
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, dsnPart{pt, p.Header, body})
	}
	return e.Header, parts
}

// statusGroups parses a message/delivery-status body into its field groups:
// the per-message group first, then one per recipient (RFC 3464 §2.1).
func statusGroups(t *testing.T, body []byte) []textproto.Header {
	t.Helper()
	var groups []textproto.Header
	for _, g := range strings.Split(strings.TrimSpace(string(body)), "\r\n\r\n") {
		h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(g + "\r\n\r\n")))
		if err != nil {
			t.Fatalf("delivery-status group %q: %v", g, err)
		}
		groups = append(groups, h)
	}
	return groups
}

func testDSNParams() dsnParams {
	arrival := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	return dsnParams{
		Hostname: "mail.example.org",
		DSNID:    "1LV5ZRD340DSN01",
		OrigID:   "1LV5ZRD340ORIG1",
		Sender:   "alice@example.com",
		Arrival:  arrival,
		Now:      arrival.Add(3 * time.Hour),
		Recipients: []dsnRecipient{
			{Address: "nobody@example.net", Status: "5.1.1", RemoteMTA: "mx.example.net", Reply: "550 5.1.1 <nobody@example.net>: no such user"},
			{Address: "slow@example.org", Status: "4.4.1", Reply: "connect to mx.example.org[192.0.2.9]:25: connection refused", Expired: true},
		},
		Header: []byte(testHeader + "From: alice@example.com\r\nTo: nobody@example.net\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n"),
	}
}

func TestBuildDSN_Golden(t *testing.T) {
	t.Parallel()
	got := buildDSN(testDSNParams())
	path := filepath.Join("testdata", "dsn.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("buildDSN differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestBuildDSN_ParsesBackAsRFC3464(t *testing.T) {
	t.Parallel()
	p := testDSNParams()
	top, parts := parseDSN(t, buildDSN(p))

	header := []struct{ field, want string }{
		{"From", "Mail Delivery System <MAILER-DAEMON@mail.example.org>"},
		{"To", "<alice@example.com>"},
		{"Auto-Submitted", "auto-replied"},
		{"MIME-Version", "1.0"},
		{"Message-Id", "<20250304130000.1LV5ZRD340DSN01@mail.example.org>"},
		{"Date", "Tue, 04 Mar 2025 13:00:00 +0000"},
	}
	for _, h := range header {
		if got := top.Get(h.field); got != h.want {
			t.Errorf("DSN header %s = %q, want %q", h.field, got, h.want)
		}
	}
	var types []string
	for _, p := range parts {
		types = append(types, p.mediaType)
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status text/rfc822-headers" {
		t.Fatalf("DSN parts = %q, want text/plain, message/delivery-status, text/rfc822-headers", types)
	}
	if !strings.Contains(string(parts[0].body), "<nobody@example.net>: host mx.example.net said: 550 5.1.1") {
		t.Errorf("human-readable part lacks the reason:\n%s", parts[0].body)
	}

	groups := statusGroups(t, parts[1].body)
	if len(groups) != 3 {
		t.Fatalf("delivery-status has %d groups, want 1 per-message + 2 per-recipient", len(groups))
	}
	fields := []struct {
		group       int
		field, want string
	}{
		{0, "Reporting-MTA", "dns; mail.example.org"},
		{0, "Arrival-Date", "Tue, 04 Mar 2025 10:00:00 +0000"},
		{1, "Final-Recipient", "rfc822; nobody@example.net"},
		{1, "Action", "failed"},
		{1, "Status", "5.1.1"},
		{1, "Remote-MTA", "dns; mx.example.net"},
		{1, "Diagnostic-Code", "smtp; 550 5.1.1 <nobody@example.net>: no such user"},
		{2, "Final-Recipient", "rfc822; slow@example.org"},
		{2, "Action", "failed"},
		{2, "Status", "4.4.1"},
		{2, "Remote-MTA", ""},
		{2, "Diagnostic-Code", "X-Smarthost; connect to mx.example.org[192.0.2.9]:25: connection refused"},
	}
	for _, f := range fields {
		if got := groups[f.group].Get(f.field); got != f.want {
			t.Errorf("delivery-status group %d %s = %q, want %q", f.group, f.field, got, f.want)
		}
	}
	if string(parts[2].body) != string(p.Header) {
		t.Errorf("text/rfc822-headers = %q, want the original header %q", parts[2].body, p.Header)
	}
}

func TestBounce_PartialFailureReportsOnlyFailedRecipients(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = func(d *Delivery, rcpt string) Result {
		switch rcpt {
		case "gone@example.net":
			return permFail("550 5.1.1 no such user")
		case "later@example.net":
			return tempFail("451 4.7.1 greylisted")
		}
		return Result{Reply: "250 2.0.0 Ok"}
	}
	id := commit(t, tq.Queue, testEnvelope("ok@example.net", "gone@example.net", "later@example.net"), testHeader, testBody)
	tq.run(t)

	queued := tq.log.wait(t, 1, mlog.DSNQueued, mlog.QueueID, string(id))[0]
	dsnID := ID(queued.attrs[mlog.DSNID])
	bounced := tq.log.wait(t, 1, mlog.Bounced, mlog.QueueID, string(id))
	if len(bounced) != 1 || bounced[0].attrs[mlog.Rcpt] != "gone@example.net" || bounced[0].attrs[mlog.DSNID] != string(dsnID) {
		t.Errorf("bounced events = %v, want one for gone@example.net with dsn_id %s", bounced, dsnID)
	}
	if queued.attrs[mlog.RcptCount] != "1" {
		t.Errorf("dsn_queued rcpt_count = %s, want 1", queued.attrs[mlog.RcptCount])
	}
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(dsnID))
	dsn := tq.deliv.deliveries(dsnID)
	if len(dsn) != 1 || dsn[0].From != "" || strings.Join(dsn[0].Recipients, ",") != "alice@example.com" {
		t.Fatalf("DSN deliveries = %+v, want one from <> to alice@example.com", dsn)
	}
	_, parts := parseDSN(t, dsn[0].Data)
	groups := statusGroups(t, parts[1].body)
	if len(groups) != 2 || groups[1].Get("Final-Recipient") != "rfc822; gone@example.net" || groups[1].Get("Status") != "5.1.1" {
		t.Errorf("DSN reports %d recipients (%v), want only gone@example.net with 5.1.1", len(groups)-1, groups)
	}
	if !strings.Contains(string(parts[2].body), "Subject: hello") || !strings.HasPrefix(string(parts[2].body), testHeader) {
		t.Errorf("DSN headers part = %q, want the prepended and original headers", parts[2].body)
	}

	// The message stays for the deferred recipient, with states recorded.
	l := tq.List()
	var orig *Summary
	for i := range l {
		if l[i].ID == id {
			orig = &l[i]
		}
	}
	if orig == nil {
		t.Fatalf("message %s left the queue with a deferred recipient", id)
	}
	want := map[string]RecipientState{"ok@example.net": StateDelivered, "gone@example.net": StateFailed, "later@example.net": StateDeferred}
	for _, r := range orig.Recipients {
		if r.State != want[r.Address] {
			t.Errorf("recipient %s = %s, want %s", r.Address, r.State, want[r.Address])
		}
	}
}

func TestBounce_NullSenderGetsNoDSN(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, nil)
	tq.deliv.outcome = func(*Delivery, string) Result { return permFail("550 5.1.1 no such user") }
	env := testEnvelope()
	env.From = ""
	id := commit(t, tq.Queue, env, testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	if b := tq.log.match(mlog.Bounced, mlog.QueueID, string(id)); len(b) != 1 || b[0].attrs[mlog.DSNID] != "" {
		t.Errorf("bounced events = %v, want one without dsn_id", b)
	}
	if n := len(tq.log.match(mlog.DSNQueued)); n != 0 {
		t.Errorf("dsn_queued events = %d, want 0 for a null-sender message", n)
	}
	if n := len(tq.deliv.deliveries("")); n != 1 {
		t.Errorf("deliveries = %d, want 1 (no DSN)", n)
	}
}

func TestBounce_SignDSNPrependsSignature(t *testing.T) {
	t.Parallel()
	const sig = "DKIM-Signature: v=1; a=ed25519-sha256; d=mail.example.org; s=test; b=x\r\n"
	var signed []byte
	tq := newTestQueue(t, func(o *Options) {
		o.SignDSN = func(msg []byte) ([]byte, error) {
			signed = bytes.Clone(msg)
			return []byte(sig), nil
		}
	})
	tq.deliv.outcome = func(d *Delivery, _ string) Result {
		if d.From == "" {
			return Result{Reply: "250 ok"}
		}
		return permFail("550 5.7.1 rejected")
	}
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	dsnID := ID(tq.log.wait(t, 1, mlog.DSNQueued, mlog.QueueID, string(id))[0].attrs[mlog.DSNID])
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(dsnID))
	d := tq.deliv.deliveries(dsnID)
	if len(d) != 1 || string(d[0].Data) != sig+string(signed) {
		t.Errorf("delivered DSN = %+v, want the signature followed by the signed bytes", d)
	}
}

func TestBounce_SignFailureRetriesLater(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	tq := newTestQueue(t, func(o *Options) {
		o.SignDSN = func([]byte) ([]byte, error) {
			if fail.Load() {
				return nil, errors.New("key unavailable")
			}
			return nil, nil
		}
	})
	tq.deliv.outcome = func(d *Delivery, _ string) Result {
		if d.From == "" {
			return Result{Reply: "250 ok"}
		}
		return permFail("550 5.7.1 rejected")
	}
	id := commit(t, tq.Queue, testEnvelope(), testHeader, testBody)
	tq.run(t)
	tq.log.wait(t, 1, mlog.SpoolError, mlog.QueueID, string(id))
	tq.log.wait(t, 1, mlog.Bounced, mlog.QueueID, string(id))
	if l := tq.List(); len(l) != 1 || l[0].Recipients[0].State != StateFailed || l[0].Recipients[0].Notified {
		t.Fatalf("after a failed DSN: %+v, want the message kept with an unreported failure", l)
	}
	fail.Store(false)
	tq.Flush()
	tq.log.wait(t, 1, mlog.DSNQueued, mlog.QueueID, string(id))
	tq.log.wait(t, 1, mlog.Removed, mlog.QueueID, string(id))
	if n := len(tq.deliv.deliveries(id)); n != 1 {
		t.Errorf("attempts of the bounced message = %d, want 1 (a DSN retry does not redeliver)", n)
	}
}

func TestBuildDSN_BoundsLinesAndMarksUTF8(t *testing.T) {
	t.Parallel()
	p := testDSNParams()
	p.Sender = "jörg@example.com"
	p.Recipients[0].Reply = "550 5.1.1 " + strings.Repeat("x", 3000) + "\r\nInjected: header"
	p.Recipients[0].RemoteMTA = strings.Repeat("h", 2000)
	raw := buildDSN(p)
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("DSN line %d is %d octets, over RFC 5322's 998", i+1, len(line))
		}
		if strings.HasPrefix(line, "Injected:") {
			t.Errorf("a CRLF in a reply started a new line: %q", line)
		}
	}
	_, parts := parseDSN(t, raw)
	if parts[1].mediaType != "message/global-delivery-status" {
		t.Errorf("status part type = %q, want message/global-delivery-status for a UTF-8 sender (RFC 6533)", parts[1].mediaType)
	}
	if g := statusGroups(t, parts[1].body); g[1].Get("Final-Recipient") != "utf-8; nobody@example.net" {
		t.Errorf("Final-Recipient = %q, want the utf-8 address type", g[1].Get("Final-Recipient"))
	}
}
