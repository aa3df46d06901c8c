package recipients

import (
	"container/list"
	"time"
)

// answer is a cached probe answer.
type answer struct {
	addr     string // the cache key: the address, lower-cased
	accepted bool   // false: refused (negative)
	reason   string // the next hop's reply, for the log
	// refreshAt is when a positive answer becomes stale: still used, but
	// refreshed by a new probe. Unused for negative answers.
	refreshAt time.Time
	// expireAt is when the answer is no longer used at all.
	expireAt time.Time
}

// cache is a bounded least-recently-used map of probe answers. It is used
// under the Checker's lock.
type cache struct {
	max   int
	order *list.List // of *answer, most recently used first
	byKey map[string]*list.Element
}

func newCache(max int) *cache {
	return &cache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the answer for addr, or nil when there is none or it has
// expired at now (it is then dropped).
func (c *cache) get(addr string, now time.Time) *answer {
	el := c.byKey[addr]
	if el == nil {
		return nil
	}
	a := el.Value.(*answer)
	if !now.Before(a.expireAt) {
		c.order.Remove(el)
		delete(c.byKey, addr)
		return nil
	}
	c.order.MoveToFront(el)
	return a
}

// put stores a, replacing any answer for the same address, and drops the
// least recently used answer when the cache is over its bound.
func (c *cache) put(a *answer) {
	if el := c.byKey[a.addr]; el != nil {
		el.Value = a
		c.order.MoveToFront(el)
		return
	}
	c.byKey[a.addr] = c.order.PushFront(a)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*answer).addr)
	}
}

func (c *cache) len() int { return c.order.Len() }
