// Package metrics exposes smarthost's numbers in the Prometheus text format
// (version 0.0.4) on GET /metrics.
//
// The counters are not called from the mail path: they are derived from
// the mail log. [Registry.Handler] wraps the slog handler and counts each
// event line (received, rejected, delivered, deferred, bounced, expired,
// auth_failed, auth_banned) by its fixed message and keys, so the numbers
// and the log can never disagree and no package needs to know about
// metrics. Gauges (queue length, oldest message, certificate expiry) are
// read when scraped through functions the server registers.
//
// It owns no listener; the server serves [Registry] as an http.Handler.
// Written here rather than taken from prometheus/client_golang: the
// exposition format needs a few dozen lines, and the library would add
// more dependencies and memory than smarthost has elsewhere.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"

	"smarthost/queue/mlog"
)

// DelayBuckets are the upper bounds, in seconds, of the delivery delay
// histogram: from arrival to acceptance by the next hop.
var DelayBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 14400, 86400}

// Registry holds every metric. Create it with [New]; it is safe for
// concurrent use.
type Registry struct {
	mu       sync.Mutex
	counters map[string]*counter
	gauges   []gauge
	delay    histogram
}

type counter struct {
	help   string
	labels []string
	values map[string]float64 // label values joined by "\x00"
}

type gauge struct {
	name, help string
	value      func() float64
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	total  uint64
}

// The counters, by metric name.
const (
	Received    = "smarthost_messages_received_total"
	Rejected    = "smarthost_messages_rejected_total"
	Deliveries  = "smarthost_deliveries_total"
	Bounces     = "smarthost_bounces_total"
	DKIMSigned  = "smarthost_dkim_signed_messages_total"
	AuthFailure = "smarthost_auth_failures_total"
	AuthBans    = "smarthost_auth_bans_total"
	DelayName   = "smarthost_delivery_delay_seconds"
)

// New returns a registry with every counter at zero.
func New() *Registry {
	r := &Registry{counters: map[string]*counter{}}
	r.define(Received, "Messages accepted and queued (answered 250), by listener.", "listener")
	r.define(Rejected, "Commands or messages refused, by SMTP stage and reply code.", "stage", "code")
	r.define(Deliveries, "Delivery outcomes per recipient: result is delivered or deferred; tls says whether the connection was encrypted.", "result", "tls")
	r.define(Bounces, "Recipients that failed permanently (bounced) or reached max_lifetime (expired).", "reason")
	r.define(DKIMSigned, "Outbound messages DKIM-signed.")
	r.define(AuthFailure, "Failed logins.")
	r.define(AuthBans, "Client IPs banned after repeated failed logins.")
	r.delay.counts = make([]uint64, len(DelayBuckets)+1)
	return r
}

func (r *Registry) define(name, help string, labels ...string) {
	r.counters[name] = &counter{help: help, labels: labels, values: map[string]float64{}}
}

// Gauge registers a value read at every scrape.
func (r *Registry) Gauge(name, help string, value func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gauges = append(r.gauges, gauge{name, help, value})
}

// Add adds v to a counter with the given label values (in the order the
// counter was defined with).
func (r *Registry) Add(name string, v float64, labelValues ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counters[name]
	if c == nil || len(labelValues) != len(c.labels) {
		return
	}
	c.values[strings.Join(labelValues, "\x00")] += v
}

// Value returns a counter's value, for tests.
func (r *Registry) Value(name string, labelValues ...string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.counters[name]; c != nil {
		return c.values[strings.Join(labelValues, "\x00")]
	}
	return 0
}

// observeDelay records one delivery delay.
func (r *Registry) observeDelay(seconds float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.SearchFloat64s(DelayBuckets, seconds)
	r.delay.counts[i]++
	r.delay.sum += seconds
	r.delay.total++
}

// ServeHTTP writes every metric in the Prometheus text format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.WriteTo(w)
}

// WriteTo writes the exposition to w.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	gauges := append([]gauge(nil), r.gauges...)
	var b strings.Builder
	names := make([]string, 0, len(r.counters))
	for n := range r.counters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := r.counters[n]
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", n, c.help, n)
		keys := make([]string, 0, len(c.values))
		for k := range c.values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 && len(c.labels) == 0 {
			fmt.Fprintf(&b, "%s 0\n", n)
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "%s%s %s\n", n, labelSet(c.labels, strings.Split(k, "\x00")), num(c.values[k]))
		}
	}
	writeHistogram(&b, DelayName, "Time from arrival to acceptance by the next hop, per delivered recipient.", r.delay)
	r.mu.Unlock()
	// Gauges are read without the lock: they call into the queue and the
	// certificate source.
	for _, g := range gauges {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", g.name, g.help, g.name, g.name, num(g.value()))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func writeHistogram(b *strings.Builder, name, help string, h histogram) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, le := range DelayBuckets {
		cum += h.counts[i]
		fmt.Fprintf(b, "%s_bucket{le=%q} %d\n", name, num(le), cum)
	}
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, h.total, name, num(h.sum), name, h.total)
}

func labelSet(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	parts := make([]string, len(names))
	for i, n := range names {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(values[i])
		parts[i] = n + `="` + v + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func num(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", v)
}

// Handler wraps next so that every mail log event is also counted. Events
// are counted even when next filters their level out.
func (r *Registry) Handler(next slog.Handler) slog.Handler {
	return &eventHandler{reg: r, next: next}
}

type eventHandler struct {
	reg  *Registry
	next slog.Handler
}

func (h *eventHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *eventHandler) Handle(ctx context.Context, rec slog.Record) error {
	h.reg.count(rec)
	if !h.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{reg: h.reg, next: h.next.WithAttrs(as)}
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	return &eventHandler{reg: h.reg, next: h.next.WithGroup(name)}
}

// count turns one event line into counter increments.
func (r *Registry) count(rec slog.Record) {
	attr := func(key string) slog.Value {
		var v slog.Value
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v = a.Value
				return false
			}
			return true
		})
		return v
	}
	switch rec.Message {
	case mlog.Received:
		r.Add(Received, 1, attr(mlog.Listener).String())
		if attr(mlog.DKIMDomain).String() != "" {
			r.Add(DKIMSigned, 1)
		}
	case mlog.Rejected:
		r.Add(Rejected, 1, attr(mlog.Stage).String(), attr(mlog.Code).String())
	case mlog.Delivered:
		r.Add(Deliveries, 1, "delivered", tlsUsed(attr(mlog.TLS).String()))
		if d := attr(mlog.Delay); d.Kind() == slog.KindFloat64 {
			r.observeDelay(d.Float64())
		}
	case mlog.Deferred:
		r.Add(Deliveries, 1, "deferred", tlsUsed(attr(mlog.TLS).String()))
	case mlog.Bounced:
		r.Add(Bounces, 1, "bounced")
	case mlog.Expired:
		r.Add(Bounces, 1, "expired")
	case mlog.AuthFailed:
		r.Add(AuthFailure, 1)
	case mlog.AuthBanned:
		r.Add(AuthBans, 1)
	}
}

func tlsUsed(v string) string {
	if v == "" || v == "none" {
		return "no"
	}
	return "yes"
}
