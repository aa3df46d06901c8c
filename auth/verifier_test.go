package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestVerifier_Verify(t *testing.T) {
	t.Parallel()
	src := "alice:" + HashPassword("alice-pw") + "\n" +
		"bob:{BLF-CRYPT}" + bcryptHashOf(t, "bob-pw") + "\n"
	users, err := ParseUsers("users", src)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(users, VerifierOptions{CacheTTL: -1})
	tests := []struct {
		name     string
		user, pw string
		want     error
	}{
		{"argon2id user, right password", "alice", "alice-pw", nil},
		{"bcrypt user, right password", "bob", "bob-pw", nil},
		{"wrong password", "alice", "bob-pw", ErrInvalidCredentials},
		{"empty password", "alice", "", ErrInvalidCredentials},
		{"unknown user", "mallory", "alice-pw", ErrInvalidCredentials},
		{"names are case-sensitive", "Alice", "alice-pw", ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := v.Verify(context.Background(), tt.user, tt.pw); !errors.Is(got, tt.want) {
				t.Errorf("Verify(%q, %q) = %v, want %v", tt.user, tt.pw, got, tt.want)
			}
		})
	}
}

func TestVerifier_NilUsersLetsNobodyIn(t *testing.T) {
	t.Parallel()
	v := NewVerifier(nil, VerifierOptions{})
	if err := v.Verify(context.Background(), "alice", "pw"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Verify with no users file = %v, want ErrInvalidCredentials", err)
	}
}

func TestVerifier_UnknownUserCostsOneHash(t *testing.T) {
	t.Parallel()
	v := NewVerifier(usersWith(map[string]passwordHash{}), VerifierOptions{})
	// The dummy here matches "pw": even so, a user that does not exist
	// must not get in.
	dummy := &countingHash{password: "pw"}
	v.dummy = dummy
	for i := 1; i <= 3; i++ {
		if err := v.Verify(context.Background(), "ghost", "pw"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Verify(unknown user) = %v, want ErrInvalidCredentials", err)
		}
		if got := dummy.calls.Load(); got != int64(i) {
			t.Errorf("after %d logins of an unknown user the dummy was hashed %d times, want %d", i, got, i)
		}
	}
}

func TestVerifier_CachesSuccessesOnly(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration
		swap    bool
		pw      string
		want    error
		hashes  int64 // total hash computations after the step
	}
	tests := []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{"repeat success is not hashed again", time.Minute, []step{
			{pw: "pw", hashes: 1},
			{pw: "pw", hashes: 1},
			{advance: 59 * time.Second, pw: "pw", hashes: 1},
		}},
		{"entry expires after the TTL", time.Minute, []step{
			{pw: "pw", hashes: 1},
			{advance: time.Minute, pw: "pw", hashes: 2},
			{pw: "pw", hashes: 2},
		}},
		{"failures are not cached", time.Minute, []step{
			{pw: "bad", want: ErrInvalidCredentials, hashes: 1},
			{pw: "bad", want: ErrInvalidCredentials, hashes: 2},
		}},
		{"a cached success does not help another password", time.Minute, []step{
			{pw: "pw", hashes: 1},
			{pw: "pw2", want: ErrInvalidCredentials, hashes: 2},
		}},
		{"reload forgets", time.Minute, []step{
			{pw: "pw", hashes: 1},
			{swap: true, pw: "pw", hashes: 2},
		}},
		{"negative TTL disables the cache", -1, []step{
			{pw: "pw", hashes: 1},
			{pw: "pw", hashes: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &countingHash{password: "pw"}
			users := usersWith(map[string]passwordHash{"alice": h})
			clock := newFakeClock()
			v := NewVerifier(users, VerifierOptions{CacheTTL: tt.ttl, Now: clock.Now})
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				if s.swap {
					v.Swap(users)
				}
				if got := v.Verify(context.Background(), "alice", s.pw); !errors.Is(got, s.want) {
					t.Errorf("step %d: Verify(alice, %q) = %v, want %v", i, s.pw, got, s.want)
				}
				if got := h.calls.Load(); got != s.hashes {
					t.Errorf("step %d: %d hashes computed so far, want %d", i, got, s.hashes)
				}
			}
		})
	}
}

func TestVerifier_ReloadWithNewPasswordTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	old := usersWith(map[string]passwordHash{"alice": &countingHash{password: "old"}})
	v := NewVerifier(old, VerifierOptions{})
	if err := v.Verify(context.Background(), "alice", "old"); err != nil {
		t.Fatalf("Verify(old password) = %v", err)
	}
	v.Swap(usersWith(map[string]passwordHash{"alice": &countingHash{password: "new"}}))
	if err := v.Verify(context.Background(), "alice", "old"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Verify(old password) after reload = %v, want ErrInvalidCredentials (cache must be forgotten)", err)
	}
	if err := v.Verify(context.Background(), "alice", "new"); err != nil {
		t.Errorf("Verify(new password) after reload = %v, want nil", err)
	}
}

func TestVerifier_CacheStaysBounded(t *testing.T) {
	t.Parallel()
	hashes := map[string]passwordHash{}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, n := range names {
		hashes[n] = &countingHash{password: "pw"}
	}
	v := NewVerifier(usersWith(hashes), VerifierOptions{CacheSize: 3})
	for _, n := range names {
		if err := v.Verify(context.Background(), n, "pw"); err != nil {
			t.Fatalf("Verify(%s) = %v", n, err)
		}
	}
	if got := v.state.Load().cache.len(); got > 3 {
		t.Errorf("cache holds %d entries, want at most 3", got)
	}
}

func TestVerifier_BoundsConcurrentHashes(t *testing.T) {
	t.Parallel()
	h := &countingHash{password: "pw", entered: make(chan struct{}), release: make(chan struct{})}
	v := NewVerifier(usersWith(map[string]passwordHash{"alice": h}), VerifierOptions{MaxConcurrent: 2, CacheTTL: -1})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := v.Verify(context.Background(), "alice", "pw"); err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}
		})
	}
	<-h.entered
	<-h.entered
	// Both slots are taken: a third login must wait, and gives up when
	// its context ends, without hashing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Verify(ctx, "alice", "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with both slots busy and ctx cancelled = %v, want context.Canceled", err)
	}
	close(h.release)
	wg.Wait()
	if got := h.calls.Load(); got != 2 {
		t.Errorf("%d hashes computed, want 2", got)
	}
	if got := h.maxIn.Load(); got > 2 {
		t.Errorf("%d hashes ran at once, want at most 2", got)
	}
}

func TestCacheKey_SeparatesUserAndPassword(t *testing.T) {
	t.Parallel()
	key := newCacheKey()
	if cacheKey(key, "ab", "c") == cacheKey(key, "a", "bc") {
		t.Errorf(`cacheKey("ab", "c") == cacheKey("a", "bc"); want them distinct`)
	}
	if cacheKey(key, "a", "b") == cacheKey(newCacheKey(), "a", "b") {
		t.Errorf("cacheKey is the same under two random keys; want it keyed")
	}
}

// BenchmarkVerify measures one login with the default argon2id parameters:
// cold (every login hashes) and cached (a repeat within the cache TTL).
func BenchmarkVerify(b *testing.B) {
	users, err := ParseUsers("users", "alice:"+HashPassword("pw")+"\n")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		v := NewVerifier(users, VerifierOptions{CacheTTL: -1})
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Verify(ctx, "alice", "pw"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unknown_user", func(b *testing.B) {
		v := NewVerifier(users, VerifierOptions{CacheTTL: -1})
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Verify(ctx, "ghost", "pw"); !errors.Is(err, ErrInvalidCredentials) {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := NewVerifier(users, VerifierOptions{})
		if err := v.Verify(ctx, "alice", "pw"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Verify(ctx, "alice", "pw"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
