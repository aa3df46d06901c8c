package deliver

import (
	"bufio"
	"bytes"
	"errors"
	"net/textproto"
	"strings"
	"testing"
)

// dotWriterOutput is what go-smtp's DataCommand sends for data: net/textproto's
// DotWriter, final dot included.
func dotWriterOutput(t testing.TB, data []byte) []byte {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	dw := textproto.NewWriter(bw).DotWriter()
	if _, err := dw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// stufferOutput is what data() sends: data written to a dotStuffer in
// pieces of the given sizes (the last one repeated), then the tail and
// the final dot through a fresh DotWriter, as through the DataCommand.
func stufferOutput(t testing.TB, data []byte, pieces ...int) []byte {
	var out bytes.Buffer
	s := newDotStuffer(&out, make([]byte, dataBuffer))
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), max(1, pieces[min(i, len(pieces)-1)]))
		if m, err := s.Write(data[:n]); m != n || err != nil {
			t.Fatalf("Write = %d, %v, want %d, nil", m, err, n)
		}
		data = data[n:]
	}
	tail, err := s.Flush()
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(&out)
	dw := textproto.NewWriter(bw).DotWriter()
	if _, err := dw.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestDotStuffer_SendsWhatTheDataCommandWould(t *testing.T) {
	long := strings.Repeat("x", dataBuffer-1)
	for _, tc := range []struct {
		name, data string
	}{
		{"empty", ""},
		{"one line", "Subject: x\r\n\r\nbody\r\n"},
		{"no final line break", "Subject: x\r\n\r\nbody"},
		{"leading dot", ".hidden\r\n"},
		{"dot lines", "a\r\n.\r\n..\r\n.x\r\nb\r\n"},
		{"lone dot line at the end", "a\r\n.\r\n"},
		{"bare LF", "a\nb\n.c\n"},
		{"bare CR", "a\rb\r"},
		{"CR CR LF", "a\r\r\nb\r\r\r\n"},
		{"final CR", "a\r\nb\r"},
		{"only CRLF", "\r\n"},
		{"only LF", "\n"},
		{"line break at the buffer boundary", long + "\r\n.dot\r\n"},
		{"CR at the buffer boundary", long[1:] + "\r\n.dot\r\n"},
		{"dot at the buffer boundary", long[2:] + "\r\n.dot\r\n"},
		{"several buffers", strings.Repeat(".x\r\n"+strings.Repeat("y", 997)+"\r\n", 300)},
	} {
		for _, pieces := range [][]int{{1 << 20}, {1}, {2}, {3}, {7, 1, 64 << 10}, {dataBuffer - 1, 1}} {
			want := dotWriterOutput(t, []byte(tc.data))
			got := stufferOutput(t, []byte(tc.data), pieces...)
			if !bytes.Equal(got, want) {
				t.Errorf("%s in pieces of %v: dotStuffer sent %d bytes %q…, DotWriter %d bytes %q…", tc.name, pieces,
					len(got), got[:min(len(got), 80)], len(want), want[:min(len(want), 80)])
			}
		}
	}
}

// TestDotStuffer_WritesInLargeBlocks checks the point of dotStuffer: a
// 100 KiB message reaches the connection in two writes, not 25.
func TestDotStuffer_WritesInLargeBlocks(t *testing.T) {
	var w countingWriter
	s := newDotStuffer(&w, make([]byte, dataBuffer))
	msg := []byte(benchMessage(100 << 10))
	for len(msg) > 0 {
		n := min(len(msg), 32<<10)
		s.Write(msg[:n])
		msg = msg[n:]
	}
	if _, err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.writes != 2 {
		t.Errorf("100 KiB message in %d writes, want 2", w.writes)
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(b []byte) (int, error) { w.writes++; return len(b), nil }

func TestDotStuffer_WriteErrorIsSticky(t *testing.T) {
	boom := errors.New("connection reset")
	s := newDotStuffer(failingWriter{boom}, make([]byte, dataBuffer))
	big := bytes.Repeat([]byte("x\r\n"), dataBuffer)
	if _, err := s.Write(big); !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want %v", err, boom)
	}
	if _, err := s.Write([]byte("more\r\n")); !errors.Is(err, boom) {
		t.Errorf("Write after failure = %v, want %v", err, boom)
	}
	if _, err := s.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush after failure = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// FuzzDotStuffer checks that for any data, cut anywhere, dotStuffer and
// the DataCommand's final dot send exactly what the DataCommand alone
// would.
func FuzzDotStuffer(f *testing.F) {
	f.Add([]byte("a\r\n.\r\n.."), uint16(1), uint16(3))
	f.Add([]byte("\r\r\n\n.\r"), uint16(2), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, first, rest uint16) {
		want := dotWriterOutput(t, data)
		if got := stufferOutput(t, data, int(first), int(rest)); !bytes.Equal(got, want) {
			t.Errorf("dotStuffer sent %q, DotWriter %q", got, want)
		}
	})
}
