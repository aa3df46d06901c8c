package metrics

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"smarthost/queue/mlog"
)

// TestHandler_CountsMailLogEvents feeds event lines as the session and the
// queue write them and checks the counters they become.
func TestHandler_CountsMailLogEvents(t *testing.T) {
	t.Parallel()
	r := New()
	var out bytes.Buffer
	// The wrapped handler shows only warnings; events are counted anyway.
	log := slog.New(r.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	log.Info(mlog.Received, mlog.QueueID, "A", mlog.Listener, "submissions", mlog.DKIMDomain, "example.com")
	log.Info(mlog.Received, mlog.QueueID, "B", mlog.Listener, "smtp", mlog.DKIMDomain, "")
	log.Info(mlog.Rejected, mlog.QueueID, mlog.NoQueue, mlog.Stage, "rcpt", mlog.Code, 554)
	log.Info(mlog.Delivered, mlog.QueueID, "A", mlog.TLS, "TLSv1.3", mlog.Delay, 0.2)
	log.Info(mlog.Delivered, mlog.QueueID, "B", mlog.TLS, "none", mlog.Delay, 42.0)
	log.Info(mlog.Deferred, mlog.QueueID, "C", mlog.TLS, "none")
	log.Info(mlog.Bounced, mlog.QueueID, "C")
	log.Info(mlog.Expired, mlog.QueueID, "D")
	log.Warn(mlog.AuthFailed, mlog.QueueID, mlog.NoQueue, mlog.ClientIP, "192.0.2.7")
	log.Warn(mlog.AuthBanned, mlog.QueueID, mlog.NoQueue, mlog.ClientIP, "192.0.2.7")

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{Received, []string{"submissions"}, 1},
		{Received, []string{"smtp"}, 1},
		{DKIMSigned, nil, 1},
		{Rejected, []string{"rcpt", "554"}, 1},
		{Deliveries, []string{"delivered", "yes"}, 1},
		{Deliveries, []string{"delivered", "no"}, 1},
		{Deliveries, []string{"deferred", "no"}, 1},
		{Bounces, []string{"bounced"}, 1},
		{Bounces, []string{"expired"}, 1},
		{AuthFailure, nil, 1},
		{AuthBans, nil, 1},
	}
	for _, c := range checks {
		if got := r.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if strings.Contains(out.String(), "msg=received") || !strings.Contains(out.String(), "msg=auth_failed") {
		t.Errorf("the wrapped handler's level was not respected:\n%s", out.String())
	}
}

func TestServeHTTP_PrometheusTextFormat(t *testing.T) {
	t.Parallel()
	r := New()
	r.Gauge("smarthost_queue_messages", "Messages in the queue.", func() float64 { return 7 })
	r.Add(Rejected, 2, "rcpt", "554")
	r.observeDelay(0.2)
	r.observeDelay(42)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{
		"# TYPE smarthost_messages_rejected_total counter\n",
		`smarthost_messages_rejected_total{stage="rcpt",code="554"} 2` + "\n",
		"smarthost_auth_failures_total 0\n",
		"# TYPE smarthost_delivery_delay_seconds histogram\n",
		`smarthost_delivery_delay_seconds_bucket{le="0.25"} 1` + "\n",
		`smarthost_delivery_delay_seconds_bucket{le="60"} 2` + "\n",
		`smarthost_delivery_delay_seconds_bucket{le="+Inf"} 2` + "\n",
		"smarthost_delivery_delay_seconds_sum 42.2\n",
		"smarthost_delivery_delay_seconds_count 2\n",
		"# TYPE smarthost_queue_messages gauge\nsmarthost_queue_messages 7\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q:\n%s", want, body)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if !strings.HasPrefix(line, "#") && len(strings.Fields(line)) != 2 {
			t.Errorf("malformed sample line %q", line)
		}
	}
}
