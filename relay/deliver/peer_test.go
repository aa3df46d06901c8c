package deliver

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// step is one exchange of a scripted peer.
type step struct {
	// expect is the start of the line the client must send (compared
	// case-insensitively); "" sends the reply without reading, as for
	// the greeting.
	expect string
	// reply is sent after the line: one or more reply lines separated by
	// "\n"; CRLFs are added.
	reply string
	// data reads message data up to the final dot after the reply.
	data bool
	// close closes the connection after the reply.
	close bool
	// stall stops answering: the connection stays open, silent, until
	// the test ends.
	stall bool
}

// greet is the usual first step of a script: a 220 greeting.
func greet() step { return step{reply: "220 peer.example.test ESMTP"} }

// ehlo answers the deliverer's EHLO, offering no STARTTLS.
func ehlo() step {
	return step{expect: "EHLO relay.example.test", reply: "250-peer.example.test\n250-8BITMIME\n250 SIZE"}
}

// peer is a raw SMTP server that follows a script per connection: the
// n-th connection accepted runs scripts[n] (the last script repeats). It
// is for misbehaviour no real server library produces: no STARTTLS, 421
// in the middle of a transaction, stalls, garbage instead of TLS. After
// the script it answers QUIT with 221 and anything else with 500.
type peer struct {
	t       testing.TB
	l       net.Listener
	scripts [][]step

	mu    sync.Mutex
	conns []net.Conn
	lines [][]string // per connection, what the client sent
	data  []string   // message data received, per DATA
	bad   []string   // lines that did not match the script

	// quits receives the number of each connection on which the client
	// sent QUIT.
	quits chan int

	wg   sync.WaitGroup
	quit chan struct{}
}

// startPeer listens on loopback and serves the scripts until the test
// ends. It returns the listener address.
func startPeer(t testing.TB, scripts ...[]step) (*peer, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, l: l, scripts: scripts, quit: make(chan struct{}), quits: make(chan int, 100)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.stop)
	return p, l.Addr().String()
}

func (p *peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		n := len(p.conns)
		p.conns = append(p.conns, c)
		p.lines = append(p.lines, nil)
		p.mu.Unlock()
		script := p.scripts[min(n, len(p.scripts)-1)]
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(n, c, script)
		}()
	}
}

func (p *peer) serve(n int, c net.Conn, script []step) {
	defer c.Close()
	r := bufio.NewReader(c)
	write := func(reply string) bool {
		if reply == "" {
			return true
		}
		_, err := c.Write([]byte(strings.ReplaceAll(reply, "\n", "\r\n") + "\r\n"))
		return err == nil
	}
	for _, s := range script {
		if s.stall {
			<-p.quit
			return
		}
		if s.expect != "" {
			line, ok := p.readLine(n, r)
			if !ok {
				return
			}
			if !strings.HasPrefix(strings.ToUpper(line), strings.ToUpper(s.expect)) {
				p.mu.Lock()
				p.bad = append(p.bad, "got "+line+", want "+s.expect)
				p.mu.Unlock()
				write("500 5.5.1 script expected " + s.expect)
				return
			}
		}
		if !write(s.reply) {
			return
		}
		if s.data && !p.readData(r) {
			return
		}
		if s.close {
			return
		}
	}
	for {
		line, ok := p.readLine(n, r)
		if !ok {
			return
		}
		if strings.EqualFold(line, "QUIT") {
			write("221 2.0.0 bye")
			p.quits <- n
			return
		}
		write("500 5.5.1 not in the script")
	}
}

func (p *peer) readLine(n int, r *bufio.Reader) (string, bool) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", false
	}
	line = strings.TrimRight(line, "\r\n")
	p.mu.Lock()
	p.lines[n] = append(p.lines[n], line)
	p.mu.Unlock()
	return line, true
}

func (p *peer) readData(r *bufio.Reader) bool {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if line == ".\r\n" {
			p.mu.Lock()
			p.data = append(p.data, b.String())
			p.mu.Unlock()
			return true
		}
		b.WriteString(line)
	}
}

// stop closes everything and reports lines that broke the script.
func (p *peer) stop() {
	close(p.quit)
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	for _, b := range p.bad {
		p.t.Errorf("scripted peer: %s", b)
	}
}

// Lines returns what the client sent on connection n (from 0).
func (p *peer) Lines(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n >= len(p.lines) {
		return nil
	}
	return append([]string(nil), p.lines[n]...)
}

// Conns returns how many connections the peer accepted.
func (p *peer) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Data returns the message data received so far.
func (p *peer) Data() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.data...)
}
