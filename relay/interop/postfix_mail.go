package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Delivered is one message a Postfix instance delivered to its mailbox:
// one Maildir file per recipient, as virtual(8) wrote it.
type Delivered struct {
	// Path is the Maildir file.
	Path string
	// Recipient is the envelope recipient, from the Delivered-To header
	// virtual(8) adds.
	Recipient string
	// Sender is the envelope sender, from the Return-Path header
	// virtual(8) adds, without angle brackets; "" for the null sender.
	Sender string
	// Header is the message header, trace fields (Received,
	// Authentication-Results…) included.
	Header mail.Header
	// Body is everything after the header.
	Body []byte
	// Raw is the file as written, LF line ends (Maildir stores the local
	// convention).
	Raw []byte
}

// QueuedMessage is one message in a Postfix queue, from `postqueue -j`.
type QueuedMessage struct {
	// Queue is the queue it is in: maildrop, incoming, active, deferred
	// or hold.
	Queue string `json:"queue_name"`
	// ID is Postfix's queue ID.
	ID string `json:"queue_id"`
	// Sender is the envelope sender.
	Sender string `json:"sender"`
	// Recipients are the recipients not yet delivered.
	Recipients []QueuedRecipient `json:"recipients"`
}

// QueuedRecipient is one recipient of a [QueuedMessage].
type QueuedRecipient struct {
	Address string `json:"address"`
	// DelayReason says why delivery was deferred, e.g. "SASL
	// authentication failed; server ... said: 535 5.7.8 ...".
	DelayReason string `json:"delay_reason"`
}

// Sendmail posts msg as a local user would, through the instance's
// sendmail(1) (sendmail -C DIR -i -f from -- to...), which hands it to
// postdrop(1) and the maildrop queue. It works while the instance is
// stopped too: the message then waits in maildrop until [Postfix.Start].
// msg may use LF or CRLF line ends; a lone "." line does not end it.
// from "" is the null sender.
func (p *Postfix) Sendmail(t testing.TB, from string, to []string, msg []byte) {
	t.Helper()
	args := append([]string{"-C", p.etc(), "-i", "-f", from, "--"}, to...)
	out, err := p.commandInput(bytes.NewReader(msg), p.bin.sendmail, args...)
	if err != nil {
		t.Fatalf("postfix %s: sendmail -f %s %v: %v\n%s", p.Dir, from, to, err, out)
	}
}

// Flush asks the running instance to attempt delivery of every deferred
// message now (postqueue -c DIR -f). It returns once the request is
// queued, not when delivery is done. It fails the test when the instance
// is stopped.
func (p *Postfix) Flush(t testing.TB) {
	t.Helper()
	out, err := p.command(p.bin.postqueue, "-c", p.etc(), "-f")
	if err != nil {
		t.Fatalf("postfix %s: postqueue -f: %v\n%s", p.Dir, err, out)
	}
}

// Queue lists the messages in the instance's queue (postqueue -c DIR -j),
// running or stopped.
func (p *Postfix) Queue(t testing.TB) []QueuedMessage {
	t.Helper()
	q, err := p.queue()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func (p *Postfix) queue() ([]QueuedMessage, error) {
	cmd := exec.Command(p.bin.postqueue, "-c", p.etc(), "-j")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("postfix %s: postqueue -j: %v\n%s", p.Dir, err, stderr.String())
	}
	var q []QueuedMessage
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m QueuedMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("postfix %s: postqueue -j: %v in %q", p.Dir, err, sc.Text())
		}
		q = append(q, m)
	}
	return q, sc.Err()
}

// Mailbox returns the messages delivered to the instance's mailbox so far,
// oldest first.
func (p *Postfix) Mailbox(t testing.TB) []Delivered {
	t.Helper()
	msgs, err := p.mailboxMessages()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// WaitDelivered waits until at least n messages are in the mailbox and
// returns them all, oldest first. It polls the Maildir; after timeout it
// fails the test, showing the queue and the log.
func (p *Postfix) WaitDelivered(t testing.TB, n int, timeout time.Duration) []Delivered {
	t.Helper()
	var msgs []Delivered
	var err error
	ok := poll(timeout, func() bool {
		msgs, err = p.mailboxMessages()
		return err != nil || len(msgs) >= n
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		q, qerr := p.queue()
		t.Fatalf("postfix %s: %d of %d messages delivered after %v; queue: %+v %v\nlog:\n%s",
			p.Dir, len(msgs), n, timeout, q, orEmpty(qerr), p.Log())
	}
	return msgs
}

// mailboxMessages reads the Maildir's new/ and cur/.
func (p *Postfix) mailboxMessages() ([]Delivered, error) {
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(p.Dir, "mail", maildirName, sub)
		entries, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return nil, err
			}
			files = append(files, file{filepath.Join(dir, e.Name()), info.ModTime()})
		}
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].path < files[j].path
	})
	msgs := make([]Delivered, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f.path)
		if err != nil {
			return nil, err
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("postfix: %s: %w", f.path, err)
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, Delivered{
			Path:      f.path,
			Recipient: m.Header.Get("Delivered-To"),
			Sender:    strings.TrimSuffix(strings.TrimPrefix(m.Header.Get("Return-Path"), "<"), ">"),
			Header:    m.Header,
			Body:      body,
			Raw:       raw,
		})
	}
	return msgs, nil
}

// command runs a Postfix program and returns its combined output.
func (p *Postfix) command(name string, args ...string) (string, error) {
	return p.commandInput(nil, name, args...)
}

func (p *Postfix) commandInput(stdin io.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), postfixCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = p.Dir
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// poll calls done every 10ms until it returns true (poll then returns
// true) or timeout has passed (false).
func poll(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func orEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
