package deliver

import (
	"bytes"
	"io"
)

// dataBuffer is the size of the writes that carry message data to the
// socket: a 100 KiB message goes out in two write(2) calls instead of the
// 25 that go-smtp's 4 KiB buffer makes.
const dataBuffer = 64 << 10

// dotStuffer writes message data to the connection in the form DATA needs
// (RFC 5321 §4.5.2): a line that starts with a dot gets another one, and a
// bare LF becomes CRLF. Its output is byte for byte what go-smtp's
// DataCommand (net/textproto's DotWriter) would send for the same input,
// but a line at a time into a large buffer instead of a byte at a time
// into a 4 KiB one, which cost about 3.5 ns per octet and one write(2)
// per 4 KiB.
//
// The DataCommand must still end the data, because only its Close sends
// the final dot and reads the reply. It ends the data according to the
// state its own writer is in, so the line break at the very end of the
// data is held back (see [dotStuffer.Flush]) and written through it: the
// DataCommand then sees the same last bytes, is in the same state as this
// stuffer, and sends the same ending as it would have for the whole
// message. The DataCommand's own buffer is empty while the stuffer writes
// (go-smtp flushes it after every command, DATA included), so the bytes
// reach the connection in order.
type dotStuffer struct {
	w     io.Writer // the connection, TLS included
	buf   []byte
	state stuffState
	err   error // sticky write error
}

// stuffState mirrors net/textproto's dotWriter states.
type stuffState int

const (
	stuffBegin     stuffState = iota // nothing written yet
	stuffBeginLine                   // after a line's LF
	stuffCR                          // after a CR that may end a line
	stuffData                        // inside a line
)

// newDotStuffer returns a stuffer writing to w, buffering in buf (whose
// length is of no account; its capacity must be over 2).
func newDotStuffer(w io.Writer, buf []byte) *dotStuffer {
	return &dotStuffer{w: w, buf: buf[:0]}
}

// dataBuffers are the two buffers of one message's transfer: the spool
// file is read into in, and out is the dotStuffer's. A [Deliverer] keeps
// them for the next message: allocating and zeroing 128 KiB per message
// showed in the CPU profile as GC and memclr work.
type dataBuffers struct{ in, out []byte }

func (d *Deliverer) getDataBuffers() *dataBuffers {
	if b, ok := d.buffers.Get().(*dataBuffers); ok {
		return b
	}
	return &dataBuffers{in: make([]byte, dataBuffer), out: make([]byte, dataBuffer)}
}

// Write stuffs p into the buffer and writes the buffer out whenever it is
// full. It returns len(p) unless the connection failed.
func (s *dotStuffer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		if len(s.buf) >= cap(s.buf)-2 {
			// Room for the longest single step below (".x" or "\r\n")
			// is kept by flushing early.
			if err := s.flush(); err != nil {
				return n - len(p), err
			}
		}
		room := cap(s.buf) - len(s.buf)
		switch s.state {
		case stuffBegin, stuffBeginLine:
			if p[0] == '.' {
				s.buf = append(s.buf, '.')
			}
			s.state = stuffData
		case stuffCR:
			// textproto's quirk kept: a CR after a CR is data, so in
			// "\r\r\n" the LF counts as bare and gets a CR of its own.
			c := p[0]
			s.buf = append(s.buf, c)
			p = p[1:]
			s.state = stuffData
			if c == '\n' {
				s.state = stuffBeginLine
			}
		case stuffData:
			run := p[:min(len(p), room-2)]
			i := indexLineBreak(run)
			if i < 0 {
				s.buf = append(s.buf, run...)
				p = p[len(run):]
				continue
			}
			s.buf = append(s.buf, run[:i]...)
			if run[i] == '\r' {
				s.buf = append(s.buf, '\r')
				s.state = stuffCR
			} else {
				s.buf = append(s.buf, '\r', '\n')
				s.state = stuffBeginLine
			}
			p = p[i+1:]
		}
	}
	return n, nil
}

// indexLineBreak returns the index of the first CR or LF in b, or -1.
// Lines are short, so two vectorised searches beat one byte loop.
func indexLineBreak(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(b) {
		return -1
	}
	return i
}

// tail is the length of the line break at the end of the output that the
// DataCommand must write itself: the CR, or CR LF, that left the stuffer
// in its current state.
func (s *dotStuffer) tail() int {
	switch s.state {
	case stuffCR:
		return 1
	case stuffBeginLine:
		return 2
	}
	return 0
}

// flush writes the buffer except its tail, which moves to the front.
func (s *dotStuffer) flush() error {
	keep := s.tail()
	out := s.buf[:len(s.buf)-keep]
	if len(out) > 0 {
		if _, err := s.w.Write(out); err != nil {
			s.err = err
			return err
		}
	}
	s.buf = append(s.buf[:0], s.buf[len(out):]...)
	return nil
}

// Flush writes everything but the line break at the very end, and returns
// that line break (empty, "\r" or "\r\n"), which the caller writes through
// the DataCommand before closing it. The stuffer is not used afterwards.
func (s *dotStuffer) Flush() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	return s.buf, nil
}
