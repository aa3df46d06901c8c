package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"smarthost/queue"
	"smarthost/relay/sink"
)

func TestDeliver_SendsExactBytesInOneTransaction(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)

	dl := newDelivery("a@sender.test", testMessage, "b@example.test", "c@example.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	for _, rcpt := range dl.Recipients {
		r := res[rcpt]
		if r.Err != nil || !strings.HasPrefix(r.Reply, "250 ") {
			t.Errorf("%s: Err %v, Reply %q; want delivered with a 250 reply", rcpt, r.Err, r.Reply)
		}
		if r.NextHop != "smtp:example.test" || r.MX != "mx1.example.test[192.0.2.1]:25" || r.RemoteMTA != "mx1.example.test" || r.TLS != "" {
			t.Errorf("%s: NextHop %q MX %q RemoteMTA %q TLS %q; want smtp:example.test, mx1.example.test[192.0.2.1]:25, mx1.example.test, plain text", rcpt, r.NextHop, r.MX, r.RemoteMTA, r.TLS)
		}
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Data) != testMessage {
		t.Fatalf("sink got %d messages, first %q; want one, byte for byte %q", len(msgs), msgs[0].Data, testMessage)
	}
	m := msgs[0]
	if m.From != "a@sender.test" || strings.Join(m.To, " ") != "b@example.test c@example.test" || m.Helo != "relay.example.test" {
		t.Errorf("envelope = EHLO %q MAIL %q RCPT %q; want relay.example.test, a@sender.test, both recipients in one transaction", m.Helo, m.From, m.To)
	}
	if m.Size != int64(len(testMessage)) || m.Body != "8BITMIME" || m.UTF8 {
		t.Errorf("MAIL parameters = SIZE %d BODY %q SMTPUTF8 %v; want SIZE %d BODY=8BITMIME no SMTPUTF8", m.Size, m.Body, m.UTF8, len(testMessage))
	}
}

func TestDeliver_NullSender(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("", testMessage, "b@example.test")
	if r := d.Deliver(context.Background(), dl); r[0].Err != nil {
		t.Fatalf("Deliver = %v", r[0].Err)
	}
	msgs, _ := s.Wait(waitCtx(t), 1)
	if len(msgs) != 1 || msgs[0].From != "" {
		t.Errorf("sink got %v, want one message with MAIL FROM:<>", msgs)
	}
}

func TestDeliver_GroupsRecipientsByNextHop(t *testing.T) {
	t.Parallel()
	home, homeAddr := startSink(t, sink.Options{})
	mx, mxAddr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.100:10025", homeAddr)
	n.route("192.0.2.10:25", mxAddr)
	cfg := testConfig(t, map[string]string{"example.test": "smtp:[home.example.test]:10025"})
	d := newDeliverer(t, cfg, fakeDNS(), n)

	dl := newDelivery("a@sender.test", testMessage, "b@example.test", "x@other.test", "c@example.test", "y@other.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	for rcpt, want := range map[string]string{
		"b@example.test": "smtp:[home.example.test]:10025", "c@example.test": "smtp:[home.example.test]:10025",
		"x@other.test": "smtp:other.test", "y@other.test": "smtp:other.test",
	} {
		if r := res[rcpt]; r.Err != nil || r.NextHop != want {
			t.Errorf("%s: Err %v NextHop %q; want delivered via %s", rcpt, r.Err, r.NextHop, want)
		}
	}
	for _, tt := range []struct {
		name string
		s    *sink.Sink
		want string
	}{{"home", home, "b@example.test c@example.test"}, {"mx", mx, "x@other.test y@other.test"}} {
		msgs, err := tt.s.Wait(waitCtx(t), 1)
		if err != nil || len(msgs) != 1 || strings.Join(msgs[0].To, " ") != tt.want {
			t.Errorf("%s sink got %v (%v); want one transaction to %s", tt.name, msgs, err, tt.want)
		}
	}
}

func TestDeliver_PerRecipientRCPTFailures(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{Reply: func(cmd sink.Command, arg string) *sink.Reply {
		switch {
		case cmd == sink.CommandRCPT && arg == "gone@example.test":
			return &sink.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"}
		case cmd == sink.CommandRCPT && arg == "full@example.test":
			return &sink.Reply{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"}
		}
		return nil
	}})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)

	dl := newDelivery("a@sender.test", testMessage, "gone@example.test", "ok@example.test", "full@example.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	tests := []struct {
		rcpt          string
		wantErr       bool
		wantPermanent bool
		wantReply     string
		wantEnhanced  string
	}{
		{"gone@example.test", true, true, "550 5.1.1 No such user", "5.1.1"},
		{"ok@example.test", false, false, "250 2.0.0 OK: queued", "2.0.0"},
		{"full@example.test", true, false, "452 4.2.2 Mailbox full", "4.2.2"},
	}
	for _, tt := range tests {
		r := res[tt.rcpt]
		if (r.Err != nil) != tt.wantErr || r.Permanent != tt.wantPermanent || r.Reply != tt.wantReply || r.Enhanced != tt.wantEnhanced || r.RemoteMTA != "mx1.example.test" {
			t.Errorf("%s = Err %v Permanent %v Reply %q Enhanced %q RemoteMTA %q; want error %v, permanent %v, %q, %s, mx1.example.test",
				tt.rcpt, r.Err, r.Permanent, r.Reply, r.Enhanced, r.RemoteMTA, tt.wantErr, tt.wantPermanent, tt.wantReply, tt.wantEnhanced)
		}
	}
	var de *Error
	if !errors.As(res["gone@example.test"].Err, &de) || de.Command != "RCPT TO" || de.Code != 550 {
		t.Errorf("gone@example.test Err = %#v, want *deliver.Error for RCPT TO, code 550", res["gone@example.test"].Err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || strings.Join(msgs[0].To, " ") != "ok@example.test" {
		t.Errorf("sink got %v (%v), want the message for ok@example.test only", msgs, err)
	}
}

func TestDeliver_RepliesToMAILAndDATA(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		cmd           sink.Command
		reply         sink.Reply
		wantPermanent bool
		wantEnhanced  string
		wantCommand   string
		wantCode      int
	}{
		{"MAIL 451", sink.CommandMAIL, sink.Reply{Code: 451, Enhanced: "4.3.0", Text: "later"}, false, "4.3.0", "MAIL FROM", 451},
		{"MAIL 553", sink.CommandMAIL, sink.Reply{Code: 553, Enhanced: "5.7.1", Text: "sender refused"}, true, "5.7.1", "MAIL FROM", 553},
		{"DATA 452 after the dot", sink.CommandDATA, sink.Reply{Code: 452, Enhanced: "4.3.1", Text: "disk full"}, false, "4.3.1", "end of data", 452},
		{"DATA 554 after the dot", sink.CommandDATA, sink.Reply{Code: 554, Enhanced: "5.7.1", Text: "spam"}, true, "5.7.1", "end of data", 554},
		{"dropped at MAIL", sink.CommandMAIL, sink.Reply{Drop: true}, false, "4.4.2", "MAIL FROM", 0},
		{"dropped at DATA", sink.CommandDATA, sink.Reply{Drop: true}, false, "4.4.2", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{Reply: func(cmd sink.Command, _ string) *sink.Reply {
				if cmd == tt.cmd {
					r := tt.reply
					return &r
				}
				return nil
			}})
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
			dl := newDelivery("a@sender.test", testMessage, "b@example.test", "c@example.test")
			res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
			for _, rcpt := range dl.Recipients {
				r := res[rcpt]
				var de *Error
				if !errors.As(r.Err, &de) {
					t.Fatalf("%s: Err = %v, want a *deliver.Error", rcpt, r.Err)
				}
				if r.Permanent != tt.wantPermanent || r.Enhanced != tt.wantEnhanced || de.Code != tt.wantCode || (tt.wantCommand != "" && de.Command != tt.wantCommand) {
					t.Errorf("%s: %v = Permanent %v Enhanced %s Code %d Command %q; want %v %s %d %q", rcpt, r.Err, r.Permanent, r.Enhanced, de.Code, de.Command, tt.wantPermanent, tt.wantEnhanced, tt.wantCode, tt.wantCommand)
				}
			}
			if got := s.Messages(); len(got) != 0 {
				t.Errorf("sink recorded %d messages, want none", len(got))
			}
		})
	}
}

func TestDeliver_RouteFailuresAreFinalPerNextHop(t *testing.T) {
	t.Parallel()
	_, addr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("a@sender.test", testMessage, "a@null.test", "b@example.test", "c@nowhere.test")
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	tests := []struct {
		rcpt          string
		wantErr       bool
		wantPermanent bool
		wantEnhanced  string
	}{
		{"a@null.test", true, true, "5.1.10"},
		{"b@example.test", false, false, "2.0.0"},
		{"c@nowhere.test", true, true, "5.1.2"},
	}
	for _, tt := range tests {
		r := res[tt.rcpt]
		if (r.Err != nil) != tt.wantErr || r.Permanent != tt.wantPermanent || r.Enhanced != tt.wantEnhanced {
			t.Errorf("%s = Err %v Permanent %v Enhanced %q; want error %v permanent %v %s", tt.rcpt, r.Err, r.Permanent, r.Enhanced, tt.wantErr, tt.wantPermanent, tt.wantEnhanced)
		}
	}
}

func TestDeliver_SMTPUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		smtputf8 bool // the server offers it
		from     string
		rcpt     string
		utf8     bool // the client used SMTPUTF8
		wantErr  bool
	}{
		{"non-ASCII recipient, server without SMTPUTF8", false, "a@sender.test", "üser@example.test", false, true},
		{"non-ASCII sender, server without SMTPUTF8", false, "ä@sender.test", "b@example.test", false, true},
		{"UTF8 message, server without SMTPUTF8", false, "a@sender.test", "b@example.test", true, true},
		{"non-ASCII recipient, server with SMTPUTF8", true, "a@sender.test", "üser@example.test", false, false},
		{"ASCII only, server without SMTPUTF8", false, "a@sender.test", "b@example.test", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, addr := startSink(t, sink.Options{SMTPUTF8: tt.smtputf8})
			n := newTestNet()
			n.route("192.0.2.1:25", addr)
			d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
			dl := newDelivery(tt.from, testMessage, tt.rcpt)
			dl.UTF8 = tt.utf8
			r := d.Deliver(context.Background(), dl)[0]
			if !tt.wantErr {
				msgs, err := s.Wait(waitCtx(t), 1)
				if r.Err != nil || err != nil || msgs[0].UTF8 != (tt.smtputf8 && tt.rcpt != "b@example.test") {
					t.Errorf("Deliver = %v, sink %v %v; want delivered, SMTPUTF8 only when needed", r.Err, msgs, err)
				}
				return
			}
			if !r.Permanent || r.Enhanced != "5.6.7" || !strings.Contains(r.Reply, "SMTPUTF8 is required") {
				t.Errorf("Deliver = Permanent %v Enhanced %q Reply %q; want permanent 5.6.7 saying SMTPUTF8 is required", r.Permanent, r.Enhanced, r.Reply)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("sink got %d messages, want none", n)
			}
		})
	}
}

func TestDeliver_MessageLargerThanServerSIZE(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{MaxMessageBytes: 64})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("a@sender.test", testMessage, "b@example.test")
	r := d.Deliver(context.Background(), dl)[0]
	if !r.Permanent || r.Enhanced != "5.3.4" {
		t.Errorf("Deliver = Permanent %v Enhanced %q (%v); want permanent 5.3.4", r.Permanent, r.Enhanced, r.Err)
	}
	if len(s.Messages()) != 0 {
		t.Errorf("sink got a message, want none")
	}
}

// failingSpool reads n bytes of short lines and then fails, like a disk
// error.
type failingSpool struct{ n, i int }

func (f *failingSpool) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("input/output error")
	}
	k := min(len(b), f.n)
	for j := range k {
		b[j] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"[f.i%40]
		f.i++
	}
	f.n -= k
	return k, nil
}

func TestDeliver_SpoolReadFailureNeverCompletesTheMessage(t *testing.T) {
	t.Parallel()
	s, addr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("a@sender.test", testMessage, "b@example.test")
	dl.Open = func() (io.ReadCloser, error) { return io.NopCloser(&failingSpool{n: 100 << 10}), nil }
	r := d.Deliver(context.Background(), dl)[0]
	if r.Err == nil || r.Permanent || r.Enhanced != "4.3.0" {
		t.Errorf("Deliver = Err %v Permanent %v Enhanced %q; want temporary 4.3.0", r.Err, r.Permanent, r.Enhanced)
	}
	// The truncated message was never completed with a final dot; a
	// second delivery shows the sink alive and holding only that one.
	dl2 := newDelivery("a@sender.test", testMessage, "b@example.test")
	if r := d.Deliver(context.Background(), dl2)[0]; r.Err != nil {
		t.Fatalf("second Deliver = %v", r.Err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || len(msgs) != 1 || string(msgs[0].Data) != testMessage {
		t.Errorf("sink got %d messages (%v); want only the intact one", len(msgs), err)
	}
}

func TestDeliver_OpenFailureIsTemporary(t *testing.T) {
	t.Parallel()
	_, addr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("a@sender.test", testMessage, "b@example.test")
	dl.Open = func() (io.ReadCloser, error) { return nil, errors.New("no such file") }
	r := d.Deliver(context.Background(), dl)[0]
	if r.Err == nil || r.Permanent || r.Enhanced != "4.3.0" {
		t.Errorf("Deliver = Err %v Permanent %v Enhanced %q; want temporary 4.3.0", r.Err, r.Permanent, r.Enhanced)
	}
}

func TestDeliver_PanicStillGivesOneResultPerRecipient(t *testing.T) {
	t.Parallel()
	_, addr := startSink(t, sink.Options{})
	n := newTestNet()
	n.route("192.0.2.1:25", addr)
	d := newDeliverer(t, testConfig(t, nil), fakeDNS(), n)
	dl := newDelivery("a@sender.test", testMessage, "b@example.test", "x@nowhere.test", "c@example.test")
	dl.Open = func() (io.ReadCloser, error) { panic("spool bug") }
	res := byRecipient(t, dl, d.Deliver(context.Background(), dl))
	for _, rcpt := range []string{"b@example.test", "c@example.test"} {
		if r := res[rcpt]; r.Err == nil || r.Permanent {
			t.Errorf("%s = Err %v Permanent %v; want a temporary failure after the panic", rcpt, r.Err, r.Permanent)
		}
	}
}

func TestFromReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantEnhanced  string
		wantLine      string
	}{
		{"5xx with enhanced code", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}, true, "5.1.1", "550 5.1.1 No such user"},
		{"4xx without enhanced code", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "busy"}, false, "4.0.0", "450 busy"},
		{"enhanced class disagrees with the code", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "odd"}, true, "5.0.0", "550 4.2.2 odd"},
		{"reply of the wrong kind", &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "ok?"}, false, "4.5.0", "250 ok?"},
		{"multi-line reply on one line", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "first\nsecond"}, true, "5.7.1", "554 5.7.1 first second"},
		{"network error", &net.OpError{Op: "read", Err: io.ErrUnexpectedEOF}, false, "4.4.2", ""},
	}
	for _, tt := range tests {
		e := fromReply("RCPT TO", "mx.example.test[192.0.2.1]:25", tt.err)
		if e.Permanent != tt.wantPermanent || e.Enhanced != tt.wantEnhanced || e.Line != tt.wantLine {
			t.Errorf("%s: fromReply(%v) = Permanent %v Enhanced %q Line %q; want %v %q %q", tt.name, tt.err, e.Permanent, e.Enhanced, e.Line, tt.wantPermanent, tt.wantEnhanced, tt.wantLine)
		}
		if !errors.Is(e, tt.err) {
			t.Errorf("%s: fromReply(%v) does not wrap the cause", tt.name, tt.err)
		}
	}
	if got, want := fmt.Sprint(fromReply("RCPT TO", "mx", tests[0].err)), "deliver: RCPT TO: 550 5.1.1 No such user"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

var _ queue.Deliverer = (*Deliverer)(nil)
