package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SinkOptions configure a [Sink]. The zero value is a plain-text sink
// that keeps nothing.
type SinkOptions struct {
	// Hostname is the name in the greeting. Default "sink.invalid".
	Hostname string
	// TLSConfig, when set, makes the sink offer STARTTLS.
	TLSConfig *tls.Config
	// Fsync writes each message to a new file in Dir and fsyncs it before
	// answering 250, as a durable next hop does; the file is removed
	// afterwards. Without it message data is read and dropped.
	Fsync bool
	// Dir is where Fsync writes; required with Fsync.
	Dir string
	// Timeout bounds each read and write. Default 5 minutes.
	Timeout time.Duration
}

// Sink is a receiving SMTP server that counts what it accepts: the
// stand-in next hop of a benchmark. Create it with [NewSink], then call
// [Sink.Serve]. Its methods are safe for concurrent use.
type Sink struct {
	opts SinkOptions

	messages atomic.Int64
	bytes    atomic.Int64
	seq      atomic.Int64 // names Fsync files

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
	closed  bool
	first   time.Time     // first connection accepted
	last    time.Time     // last message accepted
	changed chan struct{} // closed and replaced when a message is accepted
	wg      sync.WaitGroup
}

// SinkStats is what a [Sink] has accepted so far.
type SinkStats struct {
	Messages int64
	Bytes    int64
	// First is when the first connection was accepted, Last when the
	// last message was; both zero before any.
	First, Last time.Time
}

// Rate is messages per second between First and Last.
func (s SinkStats) Rate() float64 {
	d := s.Last.Sub(s.First)
	if d <= 0 {
		return 0
	}
	return float64(s.Messages) / d.Seconds()
}

// String is the sink's machine-readable result line.
func (s SinkStats) String() string {
	return fmt.Sprintf("messages=%d bytes=%d seconds=%.3f msgs_per_s=%.1f",
		s.Messages, s.Bytes, s.Last.Sub(s.First).Seconds(), s.Rate())
}

// NewSink returns a sink configured by opts.
func NewSink(opts SinkOptions) (*Sink, error) {
	if opts.Fsync && opts.Dir == "" {
		return nil, errors.New("load: sink: fsync needs a directory")
	}
	if opts.Hostname == "" {
		opts.Hostname = "sink.invalid"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	return &Sink{opts: opts, conns: map[net.Conn]bool{}, changed: make(chan struct{})}, nil
}

// Serve accepts connections on l until [Sink.Close], then returns nil.
func (s *Sink) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.ln = l
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("load: sink: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if s.first.IsZero() {
			s.first = time.Now()
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			(&sinkSession{s: s, conn: c}).serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close stops the listener, closes every connection and waits for their
// goroutines.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Stats returns the counts so far.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SinkStats{Messages: s.messages.Load(), Bytes: s.bytes.Load(), First: s.first, Last: s.last}
}

// Wait blocks until at least n messages have been accepted, or ctx is
// done.
func (s *Sink) Wait(ctx context.Context, n int64) (SinkStats, error) {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if st := s.Stats(); st.Messages >= n {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.Stats(), fmt.Errorf("load: sink: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

func (s *Sink) accepted(size int64) {
	s.messages.Add(1)
	s.bytes.Add(size)
	s.mu.Lock()
	s.last = time.Now()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// sinkSession is one connection. Replies are buffered and flushed when no
// more pipelined input is waiting, as Postfix's smtpd does.
type sinkSession struct {
	s     *Sink
	conn  net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	tls   bool
	mail  bool // MAIL given
	rcpts int
}

// maxCommand bounds a command line (RFC 5321 §4.5.3.1.4: 512 octets; some
// slack for extensions).
const maxCommand = 4 << 10

func (ss *sinkSession) serve() {
	ss.r = bufio.NewReaderSize(ss.conn, 64<<10)
	ss.w = bufio.NewWriterSize(ss.conn, 4<<10)
	ss.reply("220 %s ESMTP smtpload sink", ss.s.opts.Hostname)
	for {
		if ss.r.Buffered() == 0 {
			if ss.w.Flush() != nil {
				return
			}
		}
		ss.conn.SetDeadline(time.Now().Add(ss.s.opts.Timeout))
		line, err := ss.r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxCommand {
				ss.reply("500 5.5.2 line too long")
				ss.w.Flush()
			}
			return
		}
		verb, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
		switch string(bytes.ToUpper(verb)) {
		case "EHLO":
			ext := "250-" + ss.s.opts.Hostname + "\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
			if ss.s.opts.TLSConfig != nil && !ss.tls {
				ext += "250-STARTTLS\r\n"
			}
			ss.w.WriteString(ext + "250 SMTPUTF8\r\n")
			ss.mail, ss.rcpts = false, 0
		case "HELO":
			ss.reply("250 %s", ss.s.opts.Hostname)
			ss.mail, ss.rcpts = false, 0
		case "STARTTLS":
			if ss.s.opts.TLSConfig == nil || ss.tls {
				ss.reply("502 5.5.1 STARTTLS not offered")
				continue
			}
			ss.reply("220 2.0.0 ready to start TLS")
			if ss.w.Flush() != nil {
				return
			}
			tc := tls.Server(ss.conn, ss.s.opts.TLSConfig)
			if tc.Handshake() != nil {
				return
			}
			ss.conn, ss.tls = tc, true
			ss.r.Reset(tc)
			ss.w.Reset(tc)
			ss.mail, ss.rcpts = false, 0
		case "MAIL":
			ss.mail, ss.rcpts = true, 0
			ss.reply("250 2.1.0 Ok")
		case "RCPT":
			if !ss.mail {
				ss.reply("503 5.5.1 MAIL first")
				continue
			}
			ss.rcpts++
			ss.reply("250 2.1.5 Ok")
		case "DATA":
			if ss.rcpts == 0 {
				ss.reply("503 5.5.1 RCPT first")
				continue
			}
			ss.reply("354 End data with <CR><LF>.<CR><LF>")
			if ss.w.Flush() != nil {
				return
			}
			if err := ss.data(); err != nil {
				ss.reply("451 4.3.0 %s", err)
				ss.w.Flush()
				return
			}
			ss.mail, ss.rcpts = false, 0
		case "RSET":
			ss.mail, ss.rcpts = false, 0
			ss.reply("250 2.0.0 Ok")
		case "NOOP":
			ss.reply("250 2.0.0 Ok")
		case "QUIT":
			ss.reply("221 2.0.0 Bye")
			ss.w.Flush()
			return
		default:
			ss.reply("502 5.5.2 command not recognized")
		}
	}
}

func (ss *sinkSession) reply(format string, args ...any) {
	fmt.Fprintf(ss.w, format+"\r\n", args...)
}

// data reads message content up to the final dot, into a file fsynced
// before the reply when the sink does that, and answers 250.
func (ss *sinkSession) data() error {
	var out io.Writer = io.Discard
	var f *os.File
	if ss.s.opts.Fsync {
		name := filepath.Join(ss.s.opts.Dir, "msg"+strconv.FormatInt(ss.s.seq.Add(1), 10))
		var err error
		if f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return errors.New("cannot store the message")
		}
		defer os.Remove(name)
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	var size int64
	midLine := false // the last read ended inside an over-long line
	for {
		ss.conn.SetReadDeadline(time.Now().Add(ss.s.opts.Timeout))
		line, err := ss.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if !midLine && err == nil && (string(line) == ".\r\n" || string(line) == ".\n") {
			break
		}
		midLine = err != nil
		size += int64(len(line))
		if _, err := bw.Write(line); err != nil {
			return errors.New("cannot store the message")
		}
	}
	if err := bw.Flush(); err != nil {
		return errors.New("cannot store the message")
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return errors.New("cannot store the message")
		}
	}
	ss.s.accepted(size)
	ss.reply("250 2.0.0 Ok: queued")
	return nil
}
