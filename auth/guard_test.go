package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smarthost/config"
)

// fakeVerifier accepts alice/pw and counts every call: a call stands for
// one password hash.
type fakeVerifier struct {
	calls atomic.Int64
	err   error // returned instead, if set
}

func (v *fakeVerifier) Verify(ctx context.Context, user, password string) error {
	v.calls.Add(1)
	if v.err != nil {
		return v.err
	}
	if user == "alice" && password == "pw" {
		return nil
	}
	return ErrInvalidCredentials
}

var testLimits = Limits{MaxFailures: 3, FailureWindow: 20 * time.Minute, BanTime: 24 * time.Hour}

func TestGuard_CountsFailuresAndBans(t *testing.T) {
	t.Parallel()
	type step struct {
		advance     time.Duration
		ip          string
		password    string // "pw" is right
		want        error
		failures    int
		banStarted  bool
		wantHashing bool // whether the verifier is called
	}
	const v4, v4b = "192.0.2.1", "192.0.2.2"
	fail := func(ip string, failures int) step {
		return step{ip: ip, password: "bad", want: ErrInvalidCredentials, failures: failures, wantHashing: true}
	}
	ban := func(ip string) step {
		return step{ip: ip, password: "bad", want: ErrInvalidCredentials, banStarted: true, wantHashing: true}
	}
	ok := func(ip string) step { return step{ip: ip, password: "pw", wantHashing: true} }
	banned := func(ip string) step { return step{ip: ip, password: "pw", want: ErrBanned} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"max_failures within the window ban", []step{
			fail(v4, 1), fail(v4, 2), ban(v4), banned(v4),
		}},
		{"failures spread over the window still add up", []step{
			fail(v4, 1), {advance: 10 * time.Minute}, fail(v4, 2), {advance: 9 * time.Minute}, ban(v4),
		}},
		{"failures older than the window are forgotten", []step{
			fail(v4, 1), {advance: 10 * time.Minute}, fail(v4, 2), {advance: 10 * time.Minute}, fail(v4, 2),
			{advance: 5 * time.Minute}, ban(v4),
		}},
		{"ban ends after ban_time", []step{
			fail(v4, 1), fail(v4, 2), ban(v4), {advance: 24*time.Hour - time.Second}, banned(v4),
			{advance: time.Second}, ok(v4),
		}},
		{"attempts during a ban do not extend it", []step{
			fail(v4, 1), fail(v4, 2), ban(v4), {advance: 23 * time.Hour}, banned(v4), banned(v4),
			{advance: time.Hour}, ok(v4),
		}},
		{"a new ban needs max_failures new failures", []step{
			fail(v4, 1), fail(v4, 2), ban(v4), {advance: 24 * time.Hour}, fail(v4, 1), fail(v4, 2), ban(v4),
		}},
		{"success forgets failures", []step{
			fail(v4, 1), fail(v4, 2), ok(v4), fail(v4, 1), fail(v4, 2), ok(v4),
		}},
		{"IPv4 addresses are counted apart", []step{
			fail(v4, 1), fail(v4, 2), ban(v4), ok(v4b), fail(v4b, 1),
		}},
		{"IPv4-mapped IPv6 is the IPv4 address", []step{
			fail(v4, 1), fail("::ffff:"+v4, 2), ban(v4), banned("::ffff:" + v4),
		}},
		{"IPv6 is counted per /64", []step{
			fail("2001:db8::1", 1), fail("2001:db8::2", 2), ban("2001:db8::ffff:ffff:ffff:ffff"),
			banned("2001:db8::99"), banned("2001:db8::99%eth0"), ok("2001:db8:0:1::1"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			v := &fakeVerifier{}
			g := NewGuard(v, GuardOptions{Limits: testLimits, Now: clock.Now})
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				if s.ip == "" {
					continue
				}
				before := v.calls.Load()
				res, err := g.Authenticate(context.Background(), Attempt{ClientIP: netip.MustParseAddr(s.ip), User: "alice", Password: s.password})
				if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
					t.Fatalf("step %d: Authenticate(%s, %q) = %v, want %v", i, s.ip, s.password, err, s.want)
				}
				if res.Failures != s.failures || res.BanStarted != s.banStarted {
					t.Errorf("step %d: Result{Failures: %d, BanStarted: %v}, want {%d, %v}", i, res.Failures, res.BanStarted, s.failures, s.banStarted)
				}
				if s.banStarted || errors.Is(err, ErrBanned) {
					if res.BanUntil.IsZero() {
						t.Errorf("step %d: BanUntil not set", i)
					}
				}
				if s.banStarted {
					if want := clock.Now().Add(testLimits.BanTime); !res.BanUntil.Equal(want) {
						t.Errorf("step %d: BanUntil = %v, want %v", i, res.BanUntil, want)
					}
				}
				if hashed := v.calls.Load() > before; hashed != s.wantHashing {
					t.Errorf("step %d: verifier called = %v, want %v", i, hashed, s.wantHashing)
				}
			}
		})
	}
}

func TestGuard_BannedClientCostsNoHashing(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	v := &fakeVerifier{}
	g := NewGuard(v, GuardOptions{Limits: testLimits, Now: clock.Now})
	ip := netip.MustParseAddr("198.51.100.7")
	for range 3 {
		g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "bad"})
	}
	if got := v.calls.Load(); got != 3 {
		t.Fatalf("%d verifications before the ban, want 3", got)
	}
	for range 1000 {
		if _, err := g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "pw"}); !errors.Is(err, ErrBanned) {
			t.Fatalf("Authenticate from a banned client = %v, want ErrBanned", err)
		}
	}
	if got := v.calls.Load(); got != 3 {
		t.Errorf("%d verifications after 1000 attempts from a banned client, want still 3", got)
	}
	until, banned := g.Banned(ip)
	if want := clock.Now().Add(testLimits.BanTime); !banned || !until.Equal(want) {
		t.Errorf("Banned(%s) = %v, %v; want %v, true", ip, until, banned, want)
	}
	if _, banned := g.Banned(netip.MustParseAddr("198.51.100.8")); banned {
		t.Errorf("Banned(198.51.100.8) = true, want false")
	}
	clock.Advance(testLimits.BanTime)
	if _, banned := g.Banned(ip); banned {
		t.Errorf("Banned(%s) after ban_time = true, want false", ip)
	}
}

func TestGuard_ParallelAttemptsFromOneClientStopAtTheBan(t *testing.T) {
	t.Parallel()
	v := &fakeVerifier{}
	g := NewGuard(v, GuardOptions{Limits: testLimits, Now: newFakeClock().Now})
	ip := netip.MustParseAddr("2001:db8::1")
	const n = 50
	var banned atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "bad"})
			if errors.Is(err, ErrBanned) {
				banned.Add(1)
			}
		})
	}
	wg.Wait()
	// Logins of one client are checked one at a time, so 50 connections
	// at once get max_failures guesses, not 50.
	if got := v.calls.Load(); got != int64(testLimits.MaxFailures) {
		t.Errorf("%d of %d parallel attempts were verified, want %d", got, n, testLimits.MaxFailures)
	}
	if got := banned.Load(); got != n-int64(testLimits.MaxFailures) {
		t.Errorf("%d attempts got ErrBanned, want %d", got, n-testLimits.MaxFailures)
	}
}

func TestGuard_OnlyWrongPasswordsCount(t *testing.T) {
	t.Parallel()
	v := &fakeVerifier{err: fmt.Errorf("auth: waiting to verify password: %w", context.DeadlineExceeded)}
	g := NewGuard(v, GuardOptions{Limits: testLimits, Now: newFakeClock().Now})
	ip := netip.MustParseAddr("192.0.2.1")
	for range 10 {
		res, err := g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "bad"})
		if !errors.Is(err, context.DeadlineExceeded) || res.Failures != 0 {
			t.Fatalf("Authenticate = %+v, %v; want no failure counted and the verifier's error", res, err)
		}
	}
	if _, banned := g.Banned(ip); banned {
		t.Errorf("client banned after timeouts, want only wrong passwords to count")
	}
	if got := g.Len(); got != 0 {
		t.Errorf("failure table holds %d entries, want 0", got)
	}
}

func TestGuard_TableStaysBoundedAndKeepsBansUnderSpray(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	v := &fakeVerifier{}
	g := NewGuard(v, GuardOptions{Limits: testLimits, MaxClients: 100, Now: clock.Now})
	attacker := netip.MustParseAddr("203.0.113.9")
	for range 3 {
		g.Authenticate(context.Background(), Attempt{ClientIP: attacker, User: "alice", Password: "bad"})
	}
	// One failure from each of 10000 addresses, as a botnet would spray.
	for i := range 10000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "bad"})
		if n := g.Len(); n > 100 {
			t.Fatalf("failure table holds %d entries after %d addresses, want at most 100", n, i+1)
		}
	}
	if _, banned := g.Banned(attacker); !banned {
		t.Errorf("the earlier ban was evicted by the spray; bans must survive")
	}
}

func TestGuard_SuccessLeavesNoEntry(t *testing.T) {
	t.Parallel()
	g := NewGuard(&fakeVerifier{}, GuardOptions{Limits: testLimits})
	for i := range 10 {
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		if _, err := g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "pw"}); err != nil {
			t.Fatalf("Authenticate = %v", err)
		}
	}
	if got := g.Len(); got != 0 {
		t.Errorf("failure table holds %d entries after only successes, want 0", got)
	}
}

func TestGuard_SetLimitsKeepsCounts(t *testing.T) {
	t.Parallel()
	g := NewGuard(&fakeVerifier{}, GuardOptions{Limits: testLimits, Now: newFakeClock().Now})
	ip := netip.MustParseAddr("192.0.2.1")
	g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "bad"})
	g.SetLimits(Limits{MaxFailures: 2})
	res, _ := g.Authenticate(context.Background(), Attempt{ClientIP: ip, User: "alice", Password: "bad"})
	if !res.BanStarted {
		t.Errorf("second failure after SetLimits(MaxFailures: 2) did not ban: %+v", res)
	}
}

func TestLimitsFromConfig(t *testing.T) {
	t.Parallel()
	a := config.Default().Auth
	got := LimitsFromConfig(a)
	want := Limits{MaxFailures: 3, FailureWindow: 20 * time.Minute, BanTime: 24 * time.Hour}
	if got != want {
		t.Errorf("LimitsFromConfig(defaults) = %+v, want %+v", got, want)
	}
	if got := (Limits{}).withDefaults(); got != want {
		t.Errorf("zero Limits with defaults = %+v, want %+v", got, want)
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ ip, want string }{
		{"192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		if got := clientKey(netip.MustParseAddr(tt.ip)).String(); got != tt.want {
			t.Errorf("clientKey(%s) = %s, want %s", tt.ip, got, tt.want)
		}
	}
}

func TestGuard_TableFullOfBansStillChecksPasswords(t *testing.T) {
	t.Parallel()
	v := &fakeVerifier{}
	g := NewGuard(v, GuardOptions{Limits: testLimits, MaxClients: 2, Now: newFakeClock().Now})
	for _, s := range []string{"192.0.2.1", "192.0.2.2"} {
		for range 3 {
			g.Authenticate(context.Background(), Attempt{ClientIP: netip.MustParseAddr(s), User: "alice", Password: "bad"})
		}
	}
	third := netip.MustParseAddr("192.0.2.3")
	for range 5 {
		res, err := g.Authenticate(context.Background(), Attempt{ClientIP: third, User: "alice", Password: "bad"})
		if !errors.Is(err, ErrInvalidCredentials) || res.Failures != 0 {
			t.Fatalf("Authenticate with a table full of bans = %+v, %v; want ErrInvalidCredentials, nothing counted", res, err)
		}
	}
	if _, err := g.Authenticate(context.Background(), Attempt{ClientIP: third, User: "alice", Password: "pw"}); err != nil {
		t.Errorf("right password with a table full of bans = %v, want nil", err)
	}
	if got := g.Len(); got != 2 {
		t.Errorf("failure table holds %d entries, want 2", got)
	}
}

// gateVerifier blocks logins of user "slow" until release is closed, and
// answers every other login at once.
type gateVerifier struct {
	fakeVerifier
	entered chan struct{}
	release chan struct{}
}

func (v *gateVerifier) Verify(ctx context.Context, user, password string) error {
	if user == "slow" {
		v.calls.Add(1)
		v.entered <- struct{}{}
		<-v.release
		return ErrInvalidCredentials
	}
	return v.fakeVerifier.Verify(ctx, user, password)
}

func TestGuard_OneLoginPerClientAtATime(t *testing.T) {
	t.Parallel()
	v := &gateVerifier{entered: make(chan struct{}), release: make(chan struct{})}
	g := NewGuard(v, GuardOptions{Limits: testLimits, Now: newFakeClock().Now})
	done := make(chan error)
	go func() {
		_, err := g.Authenticate(context.Background(), Attempt{ClientIP: netip.MustParseAddr("2001:db8::1"), User: "slow", Password: "x"})
		done <- err
	}()
	<-v.entered
	// Same client (same /64), while the first login is being checked: it
	// waits for its turn, and gives up without hashing when ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Authenticate(ctx, Attempt{ClientIP: netip.MustParseAddr("2001:db8::2"), User: "alice", Password: "pw"}); !errors.Is(err, context.Canceled) {
		t.Errorf("second login of a busy client = %v, want context.Canceled", err)
	}
	if got := v.calls.Load(); got != 1 {
		t.Errorf("%d verifications, want 1 (the second login must wait its turn)", got)
	}
	// Another client is not held up.
	if _, err := g.Authenticate(context.Background(), Attempt{ClientIP: netip.MustParseAddr("2001:db8:1::1"), User: "alice", Password: "pw"}); err != nil {
		t.Errorf("login of another client while the first is busy = %v, want nil", err)
	}
	close(v.release)
	if err := <-done; !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("first login = %v, want ErrInvalidCredentials", err)
	}
}
