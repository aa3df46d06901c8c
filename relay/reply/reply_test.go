package reply

import (
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/emersion/go-smtp"

	"smarthost/auth"
	"smarthost/queue"
)

// TestAll_RepliesAreWellFormed is the table test STYLE.md asks for: every
// reply has an enhanced code of the right class, and generic text.
func TestAll_RepliesAreWellFormed(t *testing.T) {
	t.Parallel()
	leaky := regexp.MustCompile(`/|\.toml|_|\b(spf|dkim|dmarc|dnsbl|argon|bcrypt)\b`)
	for _, r := range All {
		if r.Code < 200 || r.Code > 599 {
			t.Errorf("%q: code %d is not an SMTP reply code", r.Error(), r.Code)
		}
		if r.Enhanced[0] != r.Code/100 {
			t.Errorf("%q: enhanced class %d does not match code %d", r.Error(), r.Enhanced[0], r.Code)
		}
		if r.Enhanced[1] < 0 || r.Enhanced[1] > 7 || r.Enhanced[2] < 0 {
			t.Errorf("%q: enhanced code %v out of range (RFC 3463)", r.Error(), r.Enhanced)
		}
		if r.Text == "" {
			t.Errorf("%d: empty text", r.Code)
		}
		if leaky.MatchString(r.Text) {
			t.Errorf("%q: text names a path, key or check", r.Text)
		}
		if r.Ref == "" {
			t.Errorf("%q: no reference", r.Error())
		}
	}
}

func TestFromError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"reply", RelayDenied, "554 5.7.1 Relay access denied"},
		{"wrapped reply", fmt.Errorf("policy: %w", SenderNotOwned), "553 5.7.1 Sender address not owned by user"},
		{"reply with cause", StorageFailed.Because(errors.New("write /var/lib/x: ENOSPC")), "452 4.3.1 Insufficient system storage"},
		{"queue storage", fmt.Errorf("enqueue: %w", queue.ErrStorage), "452 4.3.1 Insufficient system storage"},
		{"auth credentials", auth.ErrInvalidCredentials, "535 5.7.8 Authentication credentials invalid"},
		{"auth banned", auth.ErrBanned, "454 4.7.0 Too many failed logins from your address; try again later"},
		{"go-smtp too large", smtp.ErrDataTooLarge, "552 5.3.4 Message size exceeds fixed limit"},
		{"go-smtp long line", smtp.ErrTooLongLine, "500 5.5.2 Line too long"},
		{"unknown", errors.New("open /etc/secret: boom"), "451 4.3.0 Local error in processing; try again later"},
	}
	for _, tt := range tests {
		got := WireText(FromError(tt.err))
		if got != tt.want {
			t.Errorf("%s: FromError(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
	if FromError(nil) != nil {
		t.Errorf("FromError(nil) != nil")
	}
}
