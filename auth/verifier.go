package auth

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// Defaults of [VerifierOptions].
const (
	// DefaultCacheTTL is how long a successful login is remembered.
	// Dovecot's auth_cache_ttl defaults to an hour; we keep it shorter
	// because the cache only has to cover a burst, such as a home Postfix
	// reconnecting for each message of a queue run.
	DefaultCacheTTL = 15 * time.Minute
	// DefaultCacheSize bounds the cache: a few entries per user of a small
	// site, times a generous margin.
	DefaultCacheSize = 1024
)

// VerifierOptions tune a [Verifier]. The zero value gives the defaults.
type VerifierOptions struct {
	// MaxConcurrent bounds the password hashes computed at once; further
	// logins wait. Each argon2id computation holds its memory (12 MiB with
	// the default parameters) while it runs, so this bound, not the number
	// of connections, decides the memory a burst of logins can take.
	// Default runtime.GOMAXPROCS(0): more would not finish sooner.
	MaxConcurrent int
	// CacheTTL is how long a successful verification is remembered.
	// Default [DefaultCacheTTL]; a negative value disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of remembered logins. Default
	// [DefaultCacheSize].
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// PasswordVerifier checks a user's password. [*Verifier] implements it;
// [Guard] takes the interface so tests can count calls.
type PasswordVerifier interface {
	// Verify returns nil when password is the user's password,
	// [ErrInvalidCredentials] when it is not or the user does not exist,
	// or another error when it could not check (ctx ended).
	Verify(ctx context.Context, user, password string) error
}

// Verifier checks passwords against the current [Users] snapshot. It is
// safe for concurrent use; [Verifier.Swap] may run while logins are being
// checked.
type Verifier struct {
	now   func() time.Time
	ttl   time.Duration
	size  int
	slots chan struct{} // one token per hash allowed to run
	dummy passwordHash
	key   []byte // cache key for this process; never leaves it
	state atomic.Pointer[verifierState]
}

// verifierState is one users snapshot with the cache of logins checked
// against it. They are swapped together, so a cached success never
// outlives the hash it was checked against.
type verifierState struct {
	users *Users
	cache *cache
}

// NewVerifier returns a verifier for users. users may be nil (nobody can
// log in) until the first [Verifier.Swap].
func NewVerifier(users *Users, opts VerifierOptions) *Verifier {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &Verifier{
		now:   opts.Now,
		ttl:   opts.CacheTTL,
		size:  opts.CacheSize,
		slots: make(chan struct{}, opts.MaxConcurrent),
		dummy: dummyHash(),
		key:   newCacheKey(),
	}
	v.Swap(users)
	return v
}

// Swap installs a new users snapshot, for example after SIGHUP, and forgets
// every cached login, so a changed or deleted password stops working at
// once. Logins being checked when Swap is called finish against the
// snapshot they started with.
func (v *Verifier) Swap(users *Users) {
	v.state.Store(&verifierState{users: users, cache: newCache(v.ttl, v.size)})
}

// Users returns the current snapshot (nil if none was installed).
func (v *Verifier) Users() *Users { return v.state.Load().users }

// Verify reports whether password is user's password: nil if it is,
// [ErrInvalidCredentials] if it is not or the user does not exist, or a
// wrapped ctx error if ctx ended while the login waited for a free hashing
// slot.
//
// A user that does not exist costs one hash against a dummy with the
// default parameters, so the time taken does not reveal which names exist
// (for users whose hashes use other parameters or bcrypt, the times differ
// by the difference in cost). A success is remembered for the cache TTL,
// keyed by an HMAC of user and password, and a repeat is answered without
// hashing.
func (v *Verifier) Verify(ctx context.Context, user, password string) error {
	st := v.state.Load()
	now := v.now()
	key := cacheKey(v.key, user, password)
	if st.cache.hit(key, now) {
		return nil
	}
	h, known := st.users.lookup(user)
	if !known {
		h = v.dummy
	}
	select {
	case v.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting to verify password: %w", ctx.Err())
	}
	ok := h.match([]byte(password))
	<-v.slots
	if !ok || !known {
		return ErrInvalidCredentials
	}
	st.cache.add(key, v.now())
	return nil
}
