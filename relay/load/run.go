package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smarthost/config"
)

// Options configure a run of the generator. Addr, Messages, Sessions and
// Size are required; the rest has defaults.
type Options struct {
	// Addr is the server, "host:port".
	Addr string
	// TLS is how sessions use TLS: [config.TLSNone] (the default),
	// [config.TLSStartTLS] or [config.TLSImplicit].
	TLS config.TLSMode
	// TLSConfig is the client's TLS configuration. nil means: no
	// certificate verification (the tool measures servers on loopback
	// with throw-away certificates) and, unless NoResume, a session cache
	// shared by all sessions, as a real client such as Postfix's keeps
	// one (smtp_tls_session_cache_database).
	TLSConfig *tls.Config
	// NoResume turns TLS session resumption off (only with TLSConfig nil).
	NoResume bool
	// User and Password, when User is set, authenticate every session
	// with AUTH PLAIN.
	User, Password string
	// Messages is how many messages to send in all.
	Messages int
	// Sessions is how many sessions run at once.
	Sessions int
	// PerSession is how many messages a session sends before it QUITs and
	// a new one starts; 0 means as many as there are.
	PerSession int
	// Size is each message's size in octets, header included.
	Size int
	// From and To are the envelope sender and recipient and the From: and
	// To: of the header. Default "load@example.com", "sink@example.net".
	From, To string
	// Helo is the EHLO name. Default "smtpload.example".
	Helo string
	// Timeout bounds each command's round trip and each session's set-up.
	// Default 5 minutes (RFC 5321 §4.5.3.2's client timeouts).
	Timeout time.Duration
}

func (o *Options) check() error {
	var problems []string
	if o.Addr == "" {
		problems = append(problems, "no server address")
	}
	if o.Messages < 1 || o.Sessions < 1 || o.Size < 1 || o.PerSession < 0 {
		problems = append(problems, fmt.Sprintf("messages %d, sessions %d and size %d must be positive, messages per session %d not negative",
			o.Messages, o.Sessions, o.Size, o.PerSession))
	}
	if o.TLS != "" && !o.TLS.Valid() {
		problems = append(problems, fmt.Sprintf("TLS mode %q is not none, starttls or implicit", o.TLS))
	}
	if len(problems) > 0 {
		return errors.New("load: " + strings.Join(problems, "; "))
	}
	return nil
}

func (o *Options) withDefaults() Options {
	c := *o
	if c.TLS == "" {
		c.TLS = config.TLSNone
	}
	if c.From == "" {
		c.From = "load@example.com"
	}
	if c.To == "" {
		c.To = "sink@example.net"
	}
	if c.Helo == "" {
		c.Helo = "smtpload.example"
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.PerSession == 0 {
		c.PerSession = c.Messages
	}
	if c.TLSConfig == nil {
		host, _, _ := net.SplitHostPort(c.Addr)
		c.TLSConfig = &tls.Config{InsecureSkipVerify: true, ServerName: host}
		if !c.NoResume {
			c.TLSConfig.ClientSessionCache = tls.NewLRUClientSessionCache(c.Sessions)
		}
	}
	return c
}

func (o *Options) tlsConfig() *tls.Config { return o.TLSConfig }

// Result is what a run of the generator measured.
type Result struct {
	// Messages is how many messages the server accepted (2xx after DATA).
	Messages int
	// Failed is how many were refused or lost with their session.
	Failed int
	// Bytes is the size of the accepted messages.
	Bytes int64
	// Elapsed is the wall time from the first connection to the last
	// reply.
	Elapsed time.Duration
	// P50 and P99 are percentiles of the accepted messages' latency: from
	// the end of the data (the final dot written) to the reply read.
	P50, P99 time.Duration
	// FirstError is the first failure, "" when there was none.
	FirstError string
}

// Rate is accepted messages per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Elapsed.Seconds()
}

// String is the machine-readable result line: space-separated key=value
// pairs, the first error quoted.
func (r Result) String() string {
	s := fmt.Sprintf("messages=%d failed=%d bytes=%d seconds=%.3f msgs_per_s=%.1f p50_ms=%.3f p99_ms=%.3f",
		r.Messages, r.Failed, r.Bytes, r.Elapsed.Seconds(), r.Rate(), ms(r.P50), ms(r.P99))
	if r.FirstError != "" {
		s += " first_error=" + strconv.Quote(r.FirstError)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Run sends opts.Messages messages and returns what it measured. The
// error is for invalid options only; refused and lost messages are counted
// in the Result. A session that fails is closed and a new one started for
// the remaining messages. Run stops early when ctx is done.
func Run(ctx context.Context, opts Options) (Result, error) {
	if err := opts.check(); err != nil {
		return Result{}, err
	}
	o := opts.withDefaults()
	m := newMessage(o.From, o.To, o.Helo, o.Size, time.Now())
	msgSize := int64(len(m.header(0)) + len(m.body))

	var (
		next   atomic.Int64 // messages claimed so far
		mu     sync.Mutex
		res    Result
		lat    []time.Duration
		wg     sync.WaitGroup
		failed = func(err error) {
			mu.Lock()
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			mu.Unlock()
		}
	)
	claim := func() (int64, bool) {
		seq := next.Add(1)
		return seq, seq <= int64(o.Messages) && ctx.Err() == nil
	}
	start := time.Now()
	for range min(o.Sessions, o.Messages) {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				seq, ok := claim()
				if !ok {
					return
				}
				c, err := dial(ctx, &o)
				if err != nil {
					failed(err)
					continue
				}
				for sent := 0; ; {
					d, err := c.send(&o, m, seq)
					if err != nil {
						failed(err)
						if !isReply(err) {
							c.conn.Close()
							break
						}
						// Refused, but the session goes on: RSET.
						if c.cmd("RSET", 250, "RSET") != nil {
							c.conn.Close()
							break
						}
					} else {
						mine = append(mine, d)
					}
					if sent++; sent == o.PerSession {
						c.quit()
						break
					}
					if seq, ok = claim(); !ok {
						c.quit()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Messages = len(lat)
	res.Bytes = int64(len(lat)) * msgSize
	slices.Sort(lat)
	res.P50, res.P99 = percentile(lat, 50), percentile(lat, 99)
	return res, nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	return sorted[max(rank, 1)-1]
}
