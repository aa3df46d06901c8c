package resolve

import (
	"errors"
	"net"
	"testing"
)

// DNSError, and so NetStyle, hands a library such as the spf library a
// temporary *net.DNSError for any failure that is not "not found" (a
// refused query is not IsTemporary in Go), and not-found as is.
func TestDNSError_TemporaryUnlessNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		err           error
		wantTemporary bool
		wantNotFound  bool
	}{
		{"refused", &net.DNSError{Err: "server misbehaving", Name: "x.test"}, true, false},
		{"servfail", &net.DNSError{Err: "server misbehaving", Name: "x.test", IsTemporary: true}, true, false},
		{"other error type", errors.New("dial udp: connection refused"), true, false},
		{"not found", &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, false, true},
	}
	for _, tt := range tests {
		got := DNSError(tt.err, "x.test")
		de, ok := got.(*net.DNSError)
		if !ok {
			t.Errorf("%s: DNSError = %T, want *net.DNSError", tt.name, got)
			continue
		}
		if de.Temporary() != tt.wantTemporary || de.IsNotFound != tt.wantNotFound || de.Name != "x.test" {
			t.Errorf("%s: Temporary() = %v, IsNotFound = %v, Name = %q; want %v, %v, x.test", tt.name, de.Temporary(), de.IsNotFound, de.Name, tt.wantTemporary, tt.wantNotFound)
		}
	}
	if DNSError(nil, "x.test") != nil {
		t.Error("DNSError(nil) != nil")
	}
}
