package inbound

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smarthost/config"
)

// TestModes_OffLooksNothingUp: off adds nothing and queries nothing;
// while DMARC is on, SPF and DKIM are evaluated whatever their own mode
// and reported in Authentication-Results, but Received-SPF follows SPF's
// mode.
func TestModes_OffLooksNothingUp(t *testing.T) {
	t.Parallel()
	msg := sign(t, message("a@example.test"), signer("example.test"))
	off, tag := config.CheckOff, config.CheckTag
	tests := []struct {
		name        string
		cfg         config.Inbound
		wantQueries []string // sorted
		receivedSPF bool
		wantMethods []string // in Authentication-Results; nil: no field
		wantSummary string
	}{
		{name: "all off", cfg: modes(off, off, off)},
		{name: "spf only", cfg: modes(tag, off, off), wantQueries: []string{"TXT example.test"},
			receivedSPF: true, wantMethods: []string{"spf"}, wantSummary: "spf=fail"},
		{name: "dkim only", cfg: modes(off, tag, off), wantQueries: []string{"TXT rsa._domainkey.example.test"},
			wantMethods: []string{"dkim"}, wantSummary: "dkim=pass"},
		{name: "dmarc only evaluates spf and dkim", cfg: modes(off, off, tag),
			wantQueries: []string{"TXT _dmarc.example.test", "TXT example.test", "TXT rsa._domainkey.example.test"},
			wantMethods: []string{"spf", "dkim", "dmarc"}, wantSummary: "spf=fail dkim=pass dmarc=pass"},
		{name: "all on", cfg: modes(tag, tag, tag),
			wantQueries: []string{"TXT _dmarc.example.test", "TXT example.test", "TXT rsa._domainkey.example.test"}, // sorted
			receivedSPF: true, wantMethods: []string{"spf", "dkim", "dmarc"}, wantSummary: "spf=fail dkim=pass dmarc=pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := dmarcZone(t)
			c := newChecker(t, tt.cfg, r)
			env := Envelope{ClientIP: netip.MustParseAddr(badIP), Helo: defaultHelo, MailFrom: "a@example.test"}
			got := check(t, c, env, msg, 4096)
			if got.err != nil {
				t.Fatalf("Finish: %v", got.err)
			}
			q := r.Queries()
			slices.Sort(q)
			if strings.Join(q, ",") != strings.Join(tt.wantQueries, ",") {
				t.Errorf("queries = %q, want %q", q, tt.wantQueries)
			}
			if n := fieldCount(got.verdict.Header, "Received-SPF"); (n == 1) != tt.receivedSPF || n > 1 {
				t.Errorf("%d Received-SPF fields, want it: %v", n, tt.receivedSPF)
			}
			var methods []string
			if ar := headerField(got.verdict.Header, "Authentication-Results"); ar != "" {
				for _, r := range strings.Split(ar, ";")[1:] {
					m, _, _ := strings.Cut(strings.TrimSpace(r), "=")
					methods = append(methods, m)
				}
			}
			if strings.Join(methods, ",") != strings.Join(tt.wantMethods, ",") {
				t.Errorf("Authentication-Results methods = %q, want %q", methods, tt.wantMethods)
			}
			if got.verdict.Summary != tt.wantSummary {
				t.Errorf("Summary = %q, want %q", got.verdict.Summary, tt.wantSummary)
			}
			if len(tt.wantMethods) == 0 && len(got.verdict.Header) != 0 {
				t.Errorf("Header = %q, want none", got.verdict.Header)
			}
		})
	}
}

// TestNew_RefusesBadOptions: modes, hostname and resolver are checked
// once, at New.
func TestNew_RefusesBadOptions(t *testing.T) {
	t.Parallel()
	tag := config.CheckTag
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"valid", Options{Hostname: hostname, Config: modes(tag, tag, tag), Resolver: zone(nil)}, true},
		{"all off needs no resolver", Options{Hostname: hostname, Config: modes(config.CheckOff, config.CheckOff, config.CheckOff)}, true},
		{"unknown mode", Options{Hostname: hostname, Config: modes("reject", tag, tag), Resolver: zone(nil)}, false},
		{"empty mode", Options{Hostname: hostname, Config: config.Inbound{}, Resolver: zone(nil)}, false},
		{"no hostname", Options{Config: modes(tag, tag, tag), Resolver: zone(nil)}, false},
		{"no resolver", Options{Hostname: hostname, Config: modes(config.CheckOff, config.CheckOff, tag)}, false},
		{"quarantine header without a colon", Options{Hostname: hostname, Resolver: zone(nil),
			Config: config.Inbound{SPF: tag, DKIM: tag, DMARC: tag, QuarantineHeader: "X-Spam-Flag YES"}}, false},
		{"quarantine header of two lines", Options{Hostname: hostname, Resolver: zone(nil),
			Config: config.Inbound{SPF: tag, DKIM: tag, DMARC: tag, QuarantineHeader: "X-Spam: 1\r\nBcc: x@example.test"}}, false},
		{"no quarantine header", Options{Hostname: hostname, Resolver: zone(nil),
			Config: config.Inbound{SPF: tag, DKIM: tag, DMARC: tag}}, true},
	}
	for _, tt := range tests {
		c, err := New(tt.o)
		if (err == nil) != tt.ok || (c != nil) != tt.ok {
			t.Errorf("%s: New = %v, %v; want ok %v", tt.name, c, err, tt.ok)
		}
	}
}

// blockingResolver never answers: every lookup waits for its context. It
// counts the lookups in progress, so a test can see that none is left.
type blockingResolver struct {
	inflight atomic.Int32
	started  chan string
}

func newBlockingResolver() *blockingResolver {
	return &blockingResolver{started: make(chan string, 16)}
}

func (b *blockingResolver) block(ctx context.Context, name string) error {
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	select {
	case b.started <- name:
	default:
	}
	<-ctx.Done()
	return &net.DNSError{Err: ctx.Err().Error(), Name: name, IsTimeout: true, IsTemporary: true}
}

func (b *blockingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return nil, b.block(ctx, name)
}

func (b *blockingResolver) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return nil, b.block(ctx, host)
}

func (b *blockingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return nil, b.block(ctx, name)
}

func (b *blockingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, b.block(ctx, addr)
}

// waitLookups waits until n lookups have started.
func (b *blockingResolver) waitLookups(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.started:
		case <-time.After(10 * time.Second):
			t.Fatal("lookups did not start")
		}
	}
}

// assertStopped fails unless every goroutine of ch has returned and no
// lookup is in progress.
func assertStopped(t *testing.T, ch *Check, b *blockingResolver) {
	t.Helper()
	if n := b.inflight.Load(); n != 0 {
		t.Errorf("%d lookups still in progress", n)
	}
	for name, done := range map[string]chan struct{}{"spf": ch.spfDone, "dmarc": ch.dmarcDone} {
		select {
		case <-done:
		default:
			t.Errorf("%s goroutine still running", name)
		}
	}
	if ch.verifier != nil {
		select {
		case <-ch.verifier.done:
		default:
			t.Error("dkim verifier still running")
		}
	}
}

// TestAbort_StopsLookupsAndGoroutines: a session that ends in the middle
// of DATA calls Abort, which returns only when nothing of the check runs.
func TestAbort_StopsLookupsAndGoroutines(t *testing.T) {
	t.Parallel()
	b := newBlockingResolver()
	c := newChecker(t, modes(config.CheckTag, config.CheckTag, config.CheckTag), b)
	ch := c.Begin(t.Context(), envelope(goodIP))
	msg := sign(t, message("a@example.test"), signer("example.test"))
	if _, err := ch.Header([]byte(msg[:strings.Index(msg, "\r\n\r\n")+4])); err != nil {
		t.Fatal(err)
	}
	b.waitLookups(t, 3) // SPF, the DKIM key, the DMARC record
	ch.Abort()
	assertStopped(t, ch, b)
	if _, err := ch.Write([]byte("body")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, err := ch.Finish(t.Context()); err == nil {
		t.Error("Finish after Abort succeeded")
	}
	ch.Abort() // a second Abort is harmless
}

// TestFinish_ContextEnds: when Finish's context ends first, Finish returns
// the context's error, which is not a verdict, and leaves nothing running.
func TestFinish_ContextEnds(t *testing.T) {
	t.Parallel()
	b := newBlockingResolver()
	c := newChecker(t, modes(config.CheckEnforce, config.CheckTag, config.CheckEnforce), b)
	ch := c.Begin(t.Context(), envelope(goodIP))
	if _, err := ch.Header([]byte(message("a@example.test"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := ch.Finish(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTempFail) {
		t.Errorf("Finish = %v, want the context's deadline error only", err)
	}
	assertStopped(t, ch, b)
}

// TestBegin_ContextCancelUnblocksWrite: a Write waiting for the verifier
// (itself waiting for a key) returns when Begin's context is cancelled;
// the check then ends with temperrors, never a refusal.
func TestBegin_ContextCancelUnblocksWrite(t *testing.T) {
	t.Parallel()
	b := newBlockingResolver()
	c := newChecker(t, modes(config.CheckTag, config.CheckTag, config.CheckEnforce), b)
	ctx, cancel := context.WithCancel(t.Context())
	ch := c.Begin(ctx, envelope(goodIP))
	defer ch.Abort()
	msg := sign(t, message("a@example.test"), signer("example.test"))
	split := strings.Index(msg, "\r\n\r\n") + 4
	if _, err := ch.Header([]byte(msg[:split])); err != nil {
		t.Fatal(err)
	}
	b.waitLookups(t, 3)
	wrote := make(chan error, 1)
	go func() {
		_, err := ch.Write([]byte(msg[split:]))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("Write returned (%v) while the key lookup was pending", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-wrote; err != nil {
		t.Errorf("Write = %v", err)
	}
	v, err := ch.Finish(t.Context())
	if !errors.Is(err, ErrTempFail) {
		t.Errorf("Finish error = %v, want ErrTempFail", err)
	}
	if v.Summary != "spf=temperror dkim=temperror dmarc=temperror action=tempfail" {
		t.Errorf("Summary = %q", v.Summary)
	}
	assertStopped(t, ch, b)
}

// TestCheck_CallOrder: calls out of order fail instead of misbehaving.
func TestCheck_CallOrder(t *testing.T) {
	t.Parallel()
	c := newChecker(t, modes(config.CheckTag, config.CheckTag, config.CheckTag), dmarcZone(t))
	ch := c.Begin(t.Context(), envelope(goodIP))
	if _, err := ch.Write([]byte("x")); err == nil {
		t.Error("Write before Header succeeded")
	}
	if _, err := ch.Finish(t.Context()); err == nil {
		t.Error("Finish before Header succeeded")
	}
	if _, err := ch.Header([]byte(message("a@example.test"))); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Header([]byte(message("a@example.test"))); err == nil {
		t.Error("second Header succeeded")
	}
	if _, err := ch.Finish(t.Context()); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if _, err := ch.Finish(t.Context()); err == nil {
		t.Error("second Finish succeeded")
	}
	if _, err := ch.Write([]byte("x")); err == nil {
		t.Error("Write after Finish succeeded")
	}
	ch.Abort() // after Finish: nothing to do, no panic
}
