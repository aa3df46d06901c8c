package inbound

import (
	"strings"
	"testing"

	"smarthost/config"
)

// BenchmarkCheck measures the whole check of a 100 KiB message as the
// session runs it (header, then the body in 32 KiB chunks, then Finish),
// with every check on and an in-memory resolver, so the figure is CPU
// only: RSA verification, the body hash through the pipe, and the header
// fields. "unsigned" shows the cost without DKIM.
func BenchmarkCheck(b *testing.B) {
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 100<<10/78)
	plain := message("a@example.test") + body
	tests := []struct {
		name string
		msg  string
	}{
		{"unsigned", plain},
		{"rsa", sign(b, plain, signer("example.test"))},
		{"rsa+ed25519", sign(b, plain, rsaSel, edSel)},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			r := dmarcZone(b)
			r.TXT["ed._domainkey.example.test"] = []string{edSel.record(b)}
			c := newChecker(b, modes(config.CheckTag, config.CheckTag, config.CheckTag), r)
			env := envelope(goodIP)
			env.MailFrom = "a@example.test"
			b.SetBytes(int64(len(tt.msg)))
			b.ReportAllocs()
			for b.Loop() {
				got := check(b, c, env, tt.msg, 32<<10)
				if got.err != nil || !strings.HasSuffix(got.verdict.Summary, "dmarc=pass") {
					b.Fatalf("Finish = %q, %v", got.verdict.Summary, got.err)
				}
			}
		})
	}
}
