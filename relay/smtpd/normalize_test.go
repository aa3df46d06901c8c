package smtpd

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"smarthost/relay/reply"
)

// normalizeByByte is the specification of lineNormalizer, one octet at a
// time: the normalized content up to the first refused octet, and the
// refusal.
func normalizeByByte(b []byte, maxLine int) ([]byte, error) {
	var out []byte
	lineLen, cr := 0, false
	for _, c := range b {
		if cr {
			cr = false
			if c != '\n' {
				return out, reply.BareCR
			}
			out = append(out, c)
			lineLen = 0
			continue
		}
		switch c {
		case '\r':
			cr = true
		case '\n':
			out = append(out, '\r')
			lineLen = 0
		case 0:
			return out, reply.NULCharacter
		default:
			lineLen++
		}
		if lineLen+2 > maxLine {
			return out, reply.LineTooLong
		}
		out = append(out, c)
	}
	if cr {
		return out, reply.BareCR
	}
	return out, nil
}

// chunkReader returns data in reads of the given sizes, the last repeated.
type chunkReader struct {
	data  []byte
	sizes []int
	reads int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	size := max(1, r.sizes[min(r.reads, len(r.sizes)-1)])
	r.reads++
	n := copy(p[:min(len(p), size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func normalizeChunked(data []byte, maxLine int, sizes ...int) ([]byte, error) {
	out, err := io.ReadAll(newLineNormalizer(&chunkReader{data: data, sizes: sizes}, maxLine))
	return out, err
}

func TestLineNormalizer(t *testing.T) {
	const maxLine = 1000
	atLimit := strings.Repeat("x", maxLine-2) + "\r\n"
	overLimit := strings.Repeat("x", maxLine-1) + "\r\n"
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{"CRLF kept", "a\r\nb\r\n", "a\r\nb\r\n", nil},
		{"bare LF gets a CR", "a\nb\n\n", "a\r\nb\r\n\r\n", nil},
		{"mixed", "a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n", nil},
		{"no final line break", "a\r\nb", "a\r\nb", nil},
		{"bare CR refused", "ok\r\nbad\rx\r\n", "ok\r\nbad\r", reply.BareCR},
		{"CR CR LF refused", "a\r\r\n", "a\r", reply.BareCR},
		{"final CR refused", "a\r\nb\r", "a\r\nb\r", reply.BareCR},
		{"NUL refused", "ok\r\nn\x00ul\r\n", "ok\r\nn", reply.NULCharacter},
		{"line of maxLine octets with CRLF", atLimit + "next\r\n", atLimit + "next\r\n", nil},
		{"line of maxLine octets with LF", atLimit[:maxLine-2] + "\n", atLimit, nil},
		{"line one octet over", "ok\r\n" + overLimit, "ok\r\n" + overLimit[:maxLine-2], reply.LineTooLong},
		{"8-bit kept", "Grüße\r\n", "Grüße\r\n", nil},
	} {
		for _, sizes := range [][]int{{32 << 10}, {1}, {2}, {3, 5}, {maxLine - 1, 1}} {
			got, err := normalizeChunked([]byte(tc.in), maxLine, sizes...)
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("%s in reads of %v: got %q, %v; want %q, %v", tc.name, sizes, got, err, tc.want, tc.err)
			}
		}
	}
}

// TestLineNormalizer_PassesCleanInputWithoutCopying checks the fast path:
// a chunk without bare LFs is handed on from the read buffer itself.
func TestLineNormalizer_PassesCleanInputWithoutCopying(t *testing.T) {
	n := newLineNormalizer(strings.NewReader("a\r\nb\r\n"), 1000)
	if _, err := n.Read(make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	if &n.pending[0] != &n.in[2] {
		t.Errorf("clean chunk was copied")
	}
}

// FuzzLineNormalizer checks lineNormalizer against normalizeByByte for
// any input, read in any chunks, with a small line limit so that limits
// are hit too.
func FuzzLineNormalizer(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\r\r\n"), uint8(3), uint8(7), uint16(6))
	f.Add([]byte("xxxxxxxx\r\n\x00"), uint8(1), uint8(2), uint16(10))
	f.Fuzz(func(t *testing.T, data []byte, first, rest uint8, maxLine uint16) {
		limit := 2 + int(maxLine)%2000
		want, wantErr := normalizeByByte(data, limit)
		got, err := normalizeChunked(data, limit, int(first), int(rest))
		if !bytes.Equal(got, want) || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Errorf("max %d: got %q, %v; want %q, %v", limit, got, err, want, wantErr)
		}
	})
}
