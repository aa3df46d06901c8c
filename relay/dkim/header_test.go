package dkim

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadHeader(t *testing.T) {
	t.Parallel()
	long := "X-Long: " + strings.Repeat("x", 10000) + "\r\n" // longer than the bufio buffer
	tests := []struct {
		name       string
		msg        string
		max        int
		wantHeader string
		wantErr    error
	}{
		{"header and body", "From: a\r\nTo: b\r\n\r\nbody\r\n", 100, "From: a\r\nTo: b\r\n\r\n", nil},
		{"LF line ends", "From: a\n\nbody\n", 100, "From: a\n\n", nil},
		{"folded field", "Subject: a\r\n b\r\n\r\nbody", 100, "Subject: a\r\n b\r\n\r\n", nil},
		{"no body", "From: a\r\n\r\n", 100, "From: a\r\n\r\n", nil},
		{"no empty line: all header", "From: a\r\nTo: b\r\n", 100, "From: a\r\nTo: b\r\n", nil},
		{"no header", "\r\nbody\r\n", 100, "\r\n", nil},
		{"line longer than the read buffer", long + "\r\nbody", 20000, long + "\r\n", nil},
		{"exactly the limit", "From: a\r\n\r\n", 11, "From: a\r\n\r\n", nil},
		{"over the limit", "From: a\r\n\r\n", 10, "", ErrHeaderTooBig},
		{"over the limit in a long line", long + "\r\n", 5000, "", ErrHeaderTooBig},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tt.msg), 16)
		if len(tt.msg) > 1000 {
			br = bufio.NewReader(strings.NewReader(tt.msg))
		}
		got, err := ReadHeader(br, tt.max)
		if string(got) != tt.wantHeader || !errors.Is(err, tt.wantErr) {
			t.Errorf("ReadHeader(%.40q, %d) (%s) = %.40q, %v; want %.40q, %v", tt.msg, tt.max, tt.name, got, err, tt.wantHeader, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		rest, _ := io.ReadAll(br)
		if string(got)+string(rest) != tt.msg {
			t.Errorf("ReadHeader(%.40q) (%s): header + rest of reader is not the message", tt.msg, tt.name)
		}
	}
}

func TestSplitFields(t *testing.T) {
	t.Parallel()
	header := "From: a\r\nSubject: one\r\n two\r\n\tthree\r\nX-Empty:\r\nnot a field\r\nTo : b\n continued\n\r\nBody: not a field\r\n"
	want := []field{
		{"From", []byte("From: a\r\n")},
		{"Subject", []byte("Subject: one\r\n two\r\n\tthree\r\n")},
		{"X-Empty", []byte("X-Empty:\r\n")},
		{"", []byte("not a field\r\n")},
		{"To", []byte("To : b\n continued\n")},
	}
	got := splitFields([]byte(header))
	if len(got) != len(want) {
		t.Fatalf("splitFields = %d fields, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i].name != want[i].name || string(got[i].raw) != string(want[i].raw) {
			t.Errorf("field %d = %q %q, want %q %q", i, got[i].name, got[i].raw, want[i].name, want[i].raw)
		}
	}
}
