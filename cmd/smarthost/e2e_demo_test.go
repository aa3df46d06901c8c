package main

import (
	"strings"
	"testing"
)

// TestE2E_DemoCommand runs the README's first command, `smarthost demo -v`,
// through the command's own flag parsing and exit status: relay/demo's
// TestRun checks the steps, this checks what a user sees — exit 0, the
// report on stdout ending in success, and with -v smarthost's own log
// lines (one per message event) on stderr.
func TestE2E_DemoCommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := smarthostCmd("demo", "-v")
	if code != 0 || !strings.HasSuffix(out, "\nall steps passed\n") {
		t.Fatalf("smarthost demo -v = exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and stdout ending in \"all steps passed\"", code, out, errOut)
	}
	for _, event := range []string{"msg=received", "msg=delivered"} {
		if !strings.Contains(errOut, event) {
			t.Errorf("smarthost demo -v stderr lacks the %s log line:\n%s", event, errOut)
		}
	}
}
