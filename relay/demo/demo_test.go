package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun is the demo itself: every step must pass on a fresh machine with
// nothing but loopback.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"submitted over implicit TLS with AUTH PLAIN",
		"over TLSv1.3",
		"DKIM signature 2 of 2",
		"(Authenticated sender: demo)",
		"forwarded to the home server",
		"554 5.7.1",
		"all steps passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
