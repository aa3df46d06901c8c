package sink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// start serves a sink on a loopback listener for the test's lifetime.
func start(t *testing.T, opts Options) (*Sink, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil after Close", err)
		}
	})
	return s, l.Addr().String()
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

func send(c *smtp.Client, from string, to []string, data string, opts *smtp.MailOptions) error {
	if err := c.Mail(from, opts); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(data)); err != nil {
		return err
	}
	return w.Close()
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSink_RecordsEnvelopeAndExactBytes(t *testing.T) {
	t.Parallel()
	s, addr := start(t, Options{SMTPUTF8: true, MaxMessageBytes: 1 << 20})
	c := dial(t, addr)
	data := "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\nbare\rCR kept\r\nlast\r\n"
	if err := send(c, "a@example.test", []string{"b@example.test", "c@example.test"}, data, &smtp.MailOptions{Size: 123, UTF8: true}); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if err := send(c, "", []string{"d@example.test"}, "Subject: two\r\n\r\nx\r\n", nil); err != nil {
		t.Fatalf("second message: %v", err)
	}
	msgs, err := s.Wait(waitCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if string(m.Data) != data {
		t.Errorf("Data = %q, want %q", m.Data, data)
	}
	if m.From != "a@example.test" || strings.Join(m.To, ",") != "b@example.test,c@example.test" {
		t.Errorf("envelope = %q → %q, want a@example.test → b@,c@", m.From, m.To)
	}
	if !m.UTF8 || m.Size != 123 || m.Body != "8BITMIME" || m.Helo != "client.example.test" || m.TLS != "" {
		t.Errorf("MAIL options = UTF8 %v, Size %d, Body %q, Helo %q, TLS %q; want true, 123, 8BITMIME, client.example.test, plain text", m.UTF8, m.Size, m.Body, m.Helo, m.TLS)
	}
	if msgs[1].From != "" || msgs[1].Conn != 1 || m.Conn != 1 {
		t.Errorf("second message From %q on conn %d (first on %d), want null sender, both on conn 1", msgs[1].From, msgs[1].Conn, m.Conn)
	}
	if got := s.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
}

func TestSink_ReplyHook(t *testing.T) {
	t.Parallel()
	hook := func(cmd Command, arg string) *Reply {
		switch {
		case cmd == CommandRCPT && arg == "nobody@example.test":
			return &Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		case cmd == CommandMAIL && arg == "tempfail@example.test":
			return &Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
		case cmd == CommandMAIL && arg == "drop@example.test":
			return &Reply{Drop: true}
		}
		return nil
	}
	dataReply := func(cmd Command, arg string) *Reply {
		if cmd == CommandDATA {
			return &Reply{Code: 452, Enhanced: "4.3.1", Text: "disk full"}
		}
		return hook(cmd, arg)
	}
	tests := []struct {
		name     string
		hook     func(Command, string) *Reply
		from     string
		to       []string
		wantCode int // 0: success; -1: a non-SMTP error (connection dropped)
		wantEnh  smtp.EnhancedCode
		wantTo   string
	}{
		{"one recipient refused, other accepted", hook, "a@example.test", []string{"ok@example.test", "nobody@example.test"}, 550, smtp.EnhancedCode{5, 1, 1}, ""},
		{"MAIL refused temporarily", hook, "tempfail@example.test", []string{"ok@example.test"}, 451, smtp.EnhancedCode{4, 3, 0}, ""},
		{"connection dropped at MAIL", hook, "drop@example.test", []string{"ok@example.test"}, -1, smtp.EnhancedCode{}, ""},
		{"DATA refused after the dot", dataReply, "a@example.test", []string{"ok@example.test"}, 452, smtp.EnhancedCode{4, 3, 1}, ""},
		{"all accepted", hook, "a@example.test", []string{"ok@example.test"}, 0, smtp.EnhancedCode{}, "ok@example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, addr := start(t, Options{Reply: tt.hook})
			c := dial(t, addr)
			err := send(c, tt.from, tt.to, "Subject: x\r\n\r\nbody\r\n", nil)
			var se *smtp.SMTPError
			switch {
			case tt.wantCode == 0:
				if err != nil {
					t.Fatalf("send = %v, want success", err)
				}
				msgs, err := s.Wait(waitCtx(t), 1)
				if err != nil || strings.Join(msgs[0].To, ",") != tt.wantTo {
					t.Errorf("recorded %v, %v; want one message to %s", msgs, err, tt.wantTo)
				}
				return
			case tt.wantCode == -1:
				if err == nil || errors.As(err, &se) {
					t.Errorf("send = %v, want a connection error", err)
				}
			case !errors.As(err, &se) || se.Code != tt.wantCode || se.EnhancedCode != tt.wantEnh:
				t.Errorf("send = %v, want SMTP error %d %v", err, tt.wantCode, tt.wantEnh)
			}
			if got := s.Messages(); len(got) != 0 {
				t.Errorf("Messages() = %d messages, want none recorded", len(got))
			}
		})
	}
}

func TestSink_EHLOReply(t *testing.T) {
	t.Parallel()
	_, addr := start(t, Options{Reply: func(cmd Command, _ string) *Reply {
		if cmd == CommandEHLO {
			return &Reply{Code: 421, Enhanced: "4.3.2", Text: "shutting down"}
		}
		return nil
	}})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *smtp.SMTPError
	if err := c.Hello("client.example.test"); !errors.As(err, &se) || se.Code != 421 {
		t.Errorf("EHLO = %v, want 421", err)
	}
}

func TestSink_STARTTLS(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t, "sink.example.test")
	tests := []struct {
		name      string
		tlsConfig *tls.Config
		want      bool
	}{
		{"offered with a TLS config", &tls.Config{Certificates: []tls.Certificate{cert}}, true},
		{"not offered without", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, addr := start(t, Options{TLSConfig: tt.tlsConfig})
			c := dial(t, addr)
			if got, _ := c.Extension("STARTTLS"); got != tt.want {
				t.Fatalf("EHLO offers STARTTLS = %v, want %v", got, tt.want)
			}
			if !tt.want {
				return
			}
			tc, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tc.Close()
			if err := send(tc, "a@example.test", []string{"b@example.test"}, "Subject: tls\r\n\r\nx\r\n", nil); err != nil {
				t.Fatal(err)
			}
			msgs, err := s.Wait(waitCtx(t), 1)
			if err != nil || msgs[0].TLS != "TLSv1.3" {
				t.Errorf("message TLS = %q (%v), want TLSv1.3", msgs[0].TLS, err)
			}
		})
	}
}

func TestSink_ImplicitTLS(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t, "sink.example.test")
	s, addr := start(t, Options{ImplicitTLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	c, err := smtp.DialTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Errorf("EHLO over implicit TLS offers STARTTLS, want not")
	}
	if err := send(c, "a@example.test", []string{"b@example.test"}, "Subject: tls\r\n\r\nx\r\n", nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || msgs[0].TLS == "" {
		t.Errorf("message TLS = %q (%v), want a TLS version", msgs[0].TLS, err)
	}
}

func TestSink_WaitReturnsContextErrorWithMessagesSoFar(t *testing.T) {
	t.Parallel()
	s, addr := start(t, Options{})
	c := dial(t, addr)
	if err := send(c, "a@example.test", []string{"b@example.test"}, "Subject: 1\r\n\r\nx\r\n", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel only once the first message is in, so Wait must return
		// the context error rather than the messages.
		if _, err := s.Wait(context.Background(), 1); err == nil {
			cancel()
		}
	}()
	msgs, err := s.Wait(ctx, 2)
	if !errors.Is(err, context.Canceled) || len(msgs) != 1 {
		t.Errorf("Wait(2) = %d messages, %v; want 1 message and context.Canceled", len(msgs), err)
	}
}

func TestSink_SizeLimit(t *testing.T) {
	t.Parallel()
	s, addr := start(t, Options{MaxMessageBytes: 100})
	c := dial(t, addr)
	if _, ok := c.MaxMessageSize(); !ok {
		t.Errorf("EHLO does not advertise SIZE, want SIZE 100")
	}
	err := send(c, "a@example.test", []string{"b@example.test"}, "Subject: big\r\n\r\n"+strings.Repeat("x", 200)+"\r\n", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Errorf("oversized message = %v, want 552", err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("Messages() = %d, want 0", n)
	}
}

func selfSigned(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestSink_DiscardDataKeepsEnvelopes(t *testing.T) {
	t.Parallel()
	s, addr := start(t, Options{DiscardData: true})
	c := dial(t, addr)
	if err := send(c, "a@example.test", []string{"b@example.test"}, "Subject: x\r\n\r\nbody\r\n", nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || msgs[0].Data != nil || msgs[0].From != "a@example.test" {
		t.Errorf("Wait = %+v, %v; want the envelope without data", msgs, err)
	}
}
