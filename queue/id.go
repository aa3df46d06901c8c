package queue

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Queue IDs are 15 upper-case alphanumerics, like Postfix's long queue IDs
// (enable_long_queue_ids): 10 base-36 digits of microseconds since
// idEpoch, then 5 random base-36 digits. They sort by creation time, are
// safe in file names, and are unique:
//   - within one process the time part never repeats (idGen bumps it by one
//     microsecond when the clock has not moved, so bursts of thousands of
//     messages a second cannot collide);
//   - across restarts the time part has moved on, and the random part (60
//     million values) covers a clock stepped back;
//   - Create opens the data file with O_EXCL, so a collision that slips
//     through all of that fails loudly instead of mixing two messages.
const (
	idTimeDigits   = 10
	idRandomDigits = 5
	idLen          = idTimeDigits + idRandomDigits
	// maxIDLen bounds IDs accepted from outside (admin requests); the
	// format above never exceeds it.
	maxIDLen = 16
)

// idEpoch is the zero of the time part; 36^10 µs after it is the year 2136.
var idEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

const base36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Valid reports whether id has the shape of a queue ID: 1 to 16 characters
// from 0-9 and A-Z. Admin requests are checked with it before an ID goes
// anywhere near a file name.
func (id ID) Valid() bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// idGen makes queue IDs. It is safe for concurrent use.
type idGen struct {
	mu   sync.Mutex
	last int64 // the time part of the previous ID, in µs since idEpoch
}

// next returns a new ID for a message created at now.
func (g *idGen) next(now time.Time) ID {
	us := now.Sub(idEpoch).Microseconds()
	if us < 0 {
		us = 0
	}
	g.mu.Lock()
	if us <= g.last {
		us = g.last + 1
	}
	g.last = us
	g.mu.Unlock()

	var b [idLen]byte
	for i := idTimeDigits - 1; i >= 0; i-- {
		b[i] = base36[us%36]
		us /= 36
	}
	for i := idTimeDigits; i < idLen; i++ {
		b[i] = base36[rand.IntN(36)]
	}
	return ID(b[:])
}
