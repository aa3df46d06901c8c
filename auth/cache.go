package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// cache remembers recent successful logins, like Dovecot's auth cache, so a
// client that reconnects for every message does not pay for a password hash
// each time. It stores only an HMAC of user and password under a key that
// is random per process: a memory dump does not give an offline guesser a
// fast hash to attack, because without the key nothing can be checked.
// Failures are not cached; the [Guard] deals with those.
type cache struct {
	ttl time.Duration // <= 0: disabled
	max int

	mu      sync.Mutex
	expires map[[sha256.Size]byte]time.Time
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, expires: make(map[[sha256.Size]byte]time.Time)}
}

// newCacheKey returns a fresh HMAC key for one [Verifier].
func newCacheKey() []byte {
	k := make([]byte, sha256.Size)
	rand.Read(k)
	return k
}

// cacheKey is HMAC-SHA256(key, len(user) || user || password). The length
// prefix keeps ("ab", "c") and ("a", "bc") apart.
func cacheKey(key []byte, user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(password))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// hit reports whether k was added less than ttl before now.
func (c *cache) hit(k [sha256.Size]byte, now time.Time) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.expires[k]
	if ok && !now.Before(exp) {
		delete(c.expires, k)
		return false
	}
	return ok
}

// add remembers k until now+ttl. When the cache is full it drops expired
// entries, and if none have expired, an arbitrary one: under a flood of
// distinct successful logins the cache stops helping but stays small.
func (c *cache) add(k [sha256.Size]byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.expires[k]; !ok && len(c.expires) >= c.max {
		for old, exp := range c.expires {
			if !now.Before(exp) {
				delete(c.expires, old)
			}
		}
		for old := range c.expires {
			if len(c.expires) < c.max {
				break
			}
			delete(c.expires, old)
		}
	}
	c.expires[k] = now.Add(c.ttl)
}

// len is the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.expires)
}
