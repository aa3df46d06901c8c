package deliver

import (
	"context"
	"sync"
	"time"
)

// pool keeps idle connections for a short time so that the next message
// to the same host reuses one, as Postfix's connection cache does
// (smtp_connection_cache_on_demand). A connection is idle in the pool or
// in use by exactly one delivery, never both.
type pool struct {
	maxIdle int           // per key
	idleFor time.Duration // how long a connection may wait for reuse
	maxAge  time.Duration // how long a connection may be reused at all
	now     func() time.Time
	expire  func(*conn) // closes a connection taken out for good

	mu     sync.Mutex
	idle   map[poolKey][]*conn
	closed bool
	// closing counts connections taken out of the pool to be closed, so
	// that close can wait for them.
	closing sync.WaitGroup
}

func newPool(maxIdle int, idleFor, maxAge time.Duration, now func() time.Time, expire func(*conn)) *pool {
	return &pool{maxIdle: maxIdle, idleFor: idleFor, maxAge: maxAge, now: now, expire: expire, idle: map[poolKey][]*conn{}}
}

// get takes the most recently used idle connection for key, or returns
// nil. Connections found too old are closed on the way.
func (p *pool) get(key poolKey) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		list := p.idle[key]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		p.remove(key, len(list)-1)
		c.timer.Stop()
		now := p.now()
		if now.Sub(c.idleSince) > p.idleFor || now.Sub(c.created) > p.maxAge {
			p.closing.Go(func() { p.expire(c) })
			continue
		}
		return c
	}
}

// put offers a healthy connection for reuse. It returns false, and the
// caller closes the connection, when the pool is closed or full or the
// connection is too old.
func (p *pool) put(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.closed || len(p.idle[c.key]) >= p.maxIdle || now.Sub(c.created) > p.maxAge {
		return false
	}
	c.idleSince = now
	p.idle[c.key] = append(p.idle[c.key], c)
	c.timer = time.AfterFunc(p.idleFor, func() { p.drop(c) })
	return true
}

// drop closes c if it is still idle when its time is up.
func (p *pool) drop(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle[c.key] {
		if x == c {
			p.remove(c.key, i)
			p.closing.Go(func() { p.expire(c) })
			return
		}
	}
}

func (p *pool) remove(key poolKey, i int) {
	list := p.idle[key]
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(p.idle, key)
		return
	}
	p.idle[key] = list
}

// close empties the pool, closes every idle connection and waits until
// connections already on their way out are closed; later puts are
// refused.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*conn
	for _, list := range p.idle {
		all = append(all, list...)
	}
	p.idle = map[poolKey][]*conn{}
	p.mu.Unlock()
	for _, c := range all {
		c.timer.Stop()
		p.closing.Go(func() { p.expire(c) })
	}
	p.closing.Wait()
}

// limiter bounds the connections in use per destination, like Postfix's
// default_destination_concurrency_limit. A destination's slots exist only
// while someone holds or waits for one.
type limiter struct {
	limit int

	mu    sync.Mutex
	slots map[string]*slots
}

type slots struct {
	sem  chan struct{}
	refs int
}

func newLimiter(limit int) *limiter {
	return &limiter{limit: max(limit, 1), slots: map[string]*slots{}}
}

// acquire waits for a slot for dest; the caller must call the returned
// release exactly once.
func (l *limiter) acquire(ctx context.Context, dest string) (release func(), err error) {
	l.mu.Lock()
	s := l.slots[dest]
	if s == nil {
		s = &slots{sem: make(chan struct{}, l.limit)}
		l.slots[dest] = s
	}
	s.refs++
	l.mu.Unlock()
	release = func() { <-s.sem; l.unref(dest, s) }
	select {
	case s.sem <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		l.unref(dest, s)
		return nil, ctx.Err()
	}
}

func (l *limiter) unref(dest string, s *slots) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.refs--
	if s.refs == 0 {
		delete(l.slots, dest)
	}
}
