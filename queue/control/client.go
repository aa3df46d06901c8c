package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"smarthost/queue"
)

// ErrNotRunning is returned by [Dial] when nothing listens on the control
// socket: smarthost serve is not running (or runs with another state_dir).
var ErrNotRunning = errors.New("control: smarthost is not running")

// requestTimeout bounds one request; deleting a large queue takes a while.
const requestTimeout = 5 * time.Minute

// Client is a connection to a running server's control socket. Its methods
// mirror [queue.Queue]'s admin operations and return the same sentinel
// errors (see [RemoteError]). It is safe for concurrent use; requests are
// sent one at a time.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the control socket at path. When no server is listening
// there, the error wraps [ErrNotRunning].
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (no control socket at %s)", ErrNotRunning, path)
		}
		return nil, fmt.Errorf("control: %w", err)
	}
	return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// do sends one request and reads its response.
func (c *Client) do(req Request) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.SetDeadline(time.Now().Add(requestTimeout))
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("control: %w", err)
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("control: send %s: %w", req.Op, err)
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return Response{}, fmt.Errorf("control: read %s response: %w", req.Op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("control: decode %s response: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, &RemoteError{Code: resp.Code, Message: resp.Error}
	}
	return resp, nil
}

// List returns every queued message, oldest first (mailq).
func (c *Client) List() ([]queue.Summary, error) {
	resp, err := c.do(Request{Op: OpList})
	return resp.Messages, err
}

// Show returns one message's details (postcat).
func (c *Client) Show(id queue.ID) (queue.Detail, error) {
	resp, err := c.do(Request{Op: OpShow, IDs: []queue.ID{id}})
	if err != nil || resp.Detail == nil {
		if err == nil {
			err = errors.New("control: show: empty response")
		}
		return queue.Detail{}, err
	}
	return *resp.Detail, nil
}

// Flush makes the given messages, or with none every message not on hold,
// due now (postqueue -f, -i).
func (c *Client) Flush(ids ...queue.ID) error {
	_, err := c.do(Request{Op: OpFlush, IDs: ids})
	return err
}

// FlushDomain makes every message with a recipient at domain due now
// (postqueue -s) and returns how many it flushed.
func (c *Client) FlushDomain(domain string) (int, error) {
	resp, err := c.do(Request{Op: OpFlushDomain, Domain: domain})
	return resp.Count, err
}

// Delete removes messages without delivery (postsuper -d).
func (c *Client) Delete(ids ...queue.ID) error {
	_, err := c.do(Request{Op: OpDelete, IDs: ids})
	return err
}

// DeleteAll removes every message and returns how many (postsuper -d ALL).
func (c *Client) DeleteAll() (int, error) {
	resp, err := c.do(Request{Op: OpDeleteAll})
	return resp.Count, err
}

// Hold puts a message on hold (postsuper -h).
func (c *Client) Hold(id queue.ID) error {
	_, err := c.do(Request{Op: OpHold, IDs: []queue.ID{id}})
	return err
}

// Release takes a message off hold (postsuper -H).
func (c *Client) Release(id queue.ID) error {
	_, err := c.do(Request{Op: OpRelease, IDs: []queue.ID{id}})
	return err
}
