package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters for new hashes.
//
// OWASP's Password Storage Cheat Sheet lists argon2id settings of equal
// strength that trade memory for passes: m=47104 KiB/t=1, m=19456/t=2,
// m=12288/t=3, m=9216/t=4, m=7168/t=5. We take m=12 MiB, t=3, p=1 because
// the budget is a 1–2 core VPS that must stay within 64 MiB RSS with 20 busy
// sessions: with one hash per core in flight ([VerifierOptions]) that is
// 24 MiB of live argon2 memory, and Go's collector may let up to as much
// again in garbage accumulate before it runs; m=19 MiB would leave too
// little room for everything else. p=1 because extra lanes only help when
// one login may use several cores; here the concurrency bound already puts
// one login on each core. One hash takes tens of milliseconds on such a
// machine (see BenchmarkVerify), which a login can afford and a guesser
// cannot.
const (
	argon2Memory  = 12 * 1024 // KiB
	argon2Time    = 3
	argon2Threads = 1
	argon2SaltLen = 16 // RFC 9106 §3.1 recommends 16 bytes
	argon2KeyLen  = 32
)

// Bounds on the parameters of hashes read from a users file. The file is
// written by an administrator, but a typo or a hash migrated from a
// machine with more memory must not let one login allocate gigabytes.
const (
	maxArgon2Memory  = 256 * 1024 // KiB
	maxArgon2Time    = 64
	maxArgon2Threads = 16
	minArgon2Salt    = 8 // RFC 9106 §3.1: at least 8 bytes
	minArgon2Key     = 16
	maxArgon2Key     = 128
)

// passwordHash is one parsed hash from the users file.
type passwordHash interface {
	// match reports whether password hashes to this value. For a given
	// hash it does the same work whether or not the password matches.
	match(password []byte) bool
	// String describes the scheme and its cost, e.g. "argon2id
	// m=12288,t=3,p=1", without the salt or the hash.
	String() string
}

// HashPassword returns an argon2id hash of password in the PHC string
// format, "$argon2id$v=19$m=12288,t=3,p=1$SALT$HASH", with a fresh random
// salt. It costs one full hash computation. Callers validate the password
// first with [ValidatePassword].
func HashPassword(password string) string {
	salt := make([]byte, argon2SaltLen)
	// crypto/rand.Read never fails (it crashes the program instead).
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argon2Memory, argon2Time, argon2Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummyHash returns a hash with the default parameters that no password
// matches. Unknown users are checked against it so that a login for a name
// that does not exist costs the same as one for a name that does. Its key
// is random rather than computed, so making one costs nothing.
func dummyHash() passwordHash {
	h := &argon2Hash{memory: argon2Memory, time: argon2Time, threads: argon2Threads,
		salt: make([]byte, argon2SaltLen), key: make([]byte, argon2KeyLen)}
	rand.Read(h.salt)
	rand.Read(h.key)
	return h
}

// parseHash parses the hash field of a users file line: an argon2id PHC
// string or a bcrypt hash, optionally behind a Dovecot scheme prefix
// ({ARGON2ID}, {BLF-CRYPT}, or {CRYPT} holding bcrypt) so that a Dovecot
// passwd-file can be copied over as it is.
func parseHash(s string) (passwordHash, error) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return nil, fmt.Errorf("scheme prefix without '}'")
		}
		scheme, rest := strings.ToUpper(s[1:end]), s[end+1:]
		switch {
		case scheme == "ARGON2ID" && strings.HasPrefix(rest, "$argon2id$"):
		case (scheme == "BLF-CRYPT" || scheme == "CRYPT") && isBcrypt(rest):
		default:
			return nil, fmt.Errorf("unsupported scheme {%s}; only argon2id and bcrypt (BLF-CRYPT) hashes work, so set a new password", scheme)
		}
		s = rest
	}
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2(s)
	case isBcrypt(s):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return &bcryptHash{encoded: []byte(s), cost: cost}, nil
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, fmt.Errorf("argon2i and argon2d are not supported, only argon2id; set a new password")
	}
	return nil, fmt.Errorf("unknown hash format; use an argon2id or bcrypt hash (smarthost user passwd makes one)")
}

// isBcrypt reports whether s carries a bcrypt prefix we accept. $2a$, $2b$
// and $2y$ are the same algorithm for every password we accept; $2x$ marks
// hashes made by the buggy crypt_blowfish before 2011 and would not match.
func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// argon2Hash is an argon2id hash (RFC 9106) with its parameters.
type argon2Hash struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgon2 parses "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" as the PHC
// string format specifies it: parameters in that order, base64 without
// padding.
func parseArgon2(s string) (*argon2Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return nil, fmt.Errorf("bad argon2id hash; want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2id version %q not supported; want v=%d", f[2], argon2.Version)
	}
	var h argon2Hash
	params := strings.Split(f[3], ",")
	names := []string{"m", "t", "p"}
	if len(params) != len(names) {
		return nil, fmt.Errorf("argon2id parameters %q; want m=M,t=T,p=P", f[3])
	}
	var vals [3]uint64
	for i, p := range params {
		k, v, ok := strings.Cut(p, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || k != names[i] || err != nil {
			return nil, fmt.Errorf("argon2id parameters %q; want m=M,t=T,p=P", f[3])
		}
		vals[i] = n
	}
	if vals[2] < 1 || vals[2] > maxArgon2Threads {
		return nil, fmt.Errorf("argon2id p=%d out of range 1-%d", vals[2], maxArgon2Threads)
	}
	if vals[1] < 1 || vals[1] > maxArgon2Time {
		return nil, fmt.Errorf("argon2id t=%d out of range 1-%d", vals[1], maxArgon2Time)
	}
	// RFC 9106 §3.1: memory is at least 8*p KiB.
	if vals[0] < 8*vals[2] || vals[0] > maxArgon2Memory {
		return nil, fmt.Errorf("argon2id m=%d out of range %d-%d KiB", vals[0], 8*vals[2], maxArgon2Memory)
	}
	h.memory, h.time, h.threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(f[4]); err != nil || len(h.salt) < minArgon2Salt {
		return nil, fmt.Errorf("argon2id salt is not base64 of at least %d bytes", minArgon2Salt)
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(f[5]); err != nil || len(h.key) < minArgon2Key || len(h.key) > maxArgon2Key {
		return nil, fmt.Errorf("argon2id hash is not base64 of %d-%d bytes", minArgon2Key, maxArgon2Key)
	}
	return &h, nil
}

func (h *argon2Hash) match(password []byte) bool {
	got := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

func (h *argon2Hash) String() string {
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d", h.memory, h.time, h.threads)
}

// bcryptHash is a bcrypt hash, kept so users migrated from Dovecot
// (BLF-CRYPT) can log in until they set a new password.
type bcryptHash struct {
	encoded []byte
	cost    int
}

// match compares with bcrypt.CompareHashAndPassword, which compares in
// constant time. bcrypt reads only the first 72 bytes of a password, as
// every implementation does, so a migrated user whose password is longer
// still logs in; new hashes are argon2id, which has no such limit.
func (h *bcryptHash) match(password []byte) bool {
	return bcrypt.CompareHashAndPassword(h.encoded, password) == nil
}

func (h *bcryptHash) String() string { return fmt.Sprintf("bcrypt cost=%d", h.cost) }
