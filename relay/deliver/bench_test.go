package deliver

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"smarthost/relay/route"
	"smarthost/relay/sink"
)

// BenchmarkDeliver measures one message to one recipient against an
// in-process sink, with and without connection reuse.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB", 1 << 10}, {"100KiB", 100 << 10}} {
		msg := benchMessage(size.bytes)
		for _, reuse := range []bool{true, false} {
			name := size.name + "/reuse"
			if !reuse {
				name = size.name + "/new-connection"
			}
			b.Run(name, func(b *testing.B) {
				s, addr := startSink(b, sink.Options{DiscardData: true})
				n := newTestNet()
				n.route("192.0.2.1:25", addr)
				cfg := testConfig(b, nil)
				d := New(cfg, route.New(cfg, fakeDNS()), slog.New(slog.DiscardHandler))
				d.Dial = n.Dial
				if !reuse {
					d.IdleTimeout = -1
				}
				b.Cleanup(func() { d.Close() })
				dl := newDelivery("a@sender.test", msg, "b@mx1only.test")
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					if r := d.Deliver(context.Background(), dl); r[0].Err != nil {
						b.Fatal(r[0].Err)
					}
				}
				b.StopTimer()
				if c := s.Connections(); reuse && c != 1 {
					b.Errorf("sink saw %d connections with reuse, want 1", c)
				}
			})
		}
	}
}

// benchMessage is a message of about size bytes in 78-octet lines.
func benchMessage(size int) string {
	var sb strings.Builder
	sb.WriteString("From: a@sender.test\r\nTo: b@mx1only.test\r\nSubject: bench\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for sb.Len() < size {
		sb.WriteString(line)
	}
	return sb.String()
}
