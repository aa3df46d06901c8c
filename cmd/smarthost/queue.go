package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"smarthost/config"
	"smarthost/queue"
	"smarthost/queue/control"
)

const queueSynopsis = `queue list | show ID | flush [ID…] | flush -domain D | delete ID…|ALL | hold ID | release ID [-config F]

Administers the queue of the running server over its control socket
(state_dir/control.sock), doing the jobs of Postfix's mailq (list), postcat
(show), postqueue -f/-i (flush), postsuper -d (delete), -h (hold) and
-H (release). flush without IDs retries all mail not on hold now; flush
-domain D retries the mail for one recipient domain (postqueue -s), e.g.
from the home server's start-up script.`

// queueAction is one `smarthost queue` action and how many queue IDs it takes.
type queueAction struct {
	minIDs, maxIDs int // maxIDs -1: any number
}

var queueActions = map[string]queueAction{
	"list":    {0, 0},
	"show":    {1, 1},
	"flush":   {0, -1},
	"delete":  {1, -1},
	"hold":    {1, 1},
	"release": {1, 1},
}

// runQueue is `smarthost queue`: it finds the control socket through the
// configuration's state_dir and sends one admin request to the server.
func runQueue(args []string, std stdio) error {
	fs := newFlagSet("queue", queueSynopsis, std)
	configPath := configFlag(fs)
	domain := fs.String("domain", "", "with flush: retry the mail for this recipient `domain` (postqueue -s)")
	asJSON := fs.Bool("json", false, "with list or show: print JSON for scripts")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	action, args := pos[0], pos[1:]
	if *domain != "" && (action != "flush" || len(args) > 0) {
		fmt.Fprintln(std.err, "smarthost queue: -domain goes with flush and no queue IDs")
		fs.Usage()
		return errUsage
	}
	a, ok := queueActions[action]
	if !ok {
		fmt.Fprintf(std.err, "smarthost queue: unknown action %q\n", action)
		fs.Usage()
		return errUsage
	}
	if len(args) < a.minIDs || (a.maxIDs >= 0 && len(args) > a.maxIDs) {
		fmt.Fprintf(std.err, "smarthost queue %s: wrong number of queue IDs (%d)\n", action, len(args))
		fs.Usage()
		return errUsage
	}
	deleteAll := action == "delete" && len(args) == 1 && args[0] == "ALL"
	ids := make([]queue.ID, 0, len(args))
	if !deleteAll {
		for _, s := range args {
			id := queue.ID(strings.ToUpper(s))
			if !id.Valid() {
				return fmt.Errorf("%q is not a queue ID (IDs are letters and digits, as 'smarthost queue list' shows them)", s)
			}
			ids = append(ids, id)
		}
	}

	cfg, _, err := config.Load(*configPath)
	if err != nil {
		return fmt.Errorf("cannot find state_dir: %w", err)
	}
	path := control.SocketPath(cfg.StateDir)
	c, err := control.Dial(path)
	if errors.Is(err, control.ErrNotRunning) {
		return &exitError{code: 1, msg: fmt.Sprintf("smarthost is not running (no control socket at %s); start it with `smarthost serve`", path)}
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if *domain != "" {
		n, err := c.FlushDomain(*domain)
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "flushed: %d message(s) for %s\n", n, *domain)
		return nil
	}
	if *asJSON {
		return queueJSON(c, action, ids, std.out)
	}
	return queueRequest(c, action, ids, deleteAll, std.out)
}

// queueJSON prints list or show as JSON: an array of queue.Summary, or
// one queue.Detail with its attempt history, field names as in their JSON
// tags.
func queueJSON(c *control.Client, action string, ids []queue.ID, out io.Writer) error {
	var v any
	var err error
	switch action {
	case "list":
		var list []queue.Summary
		list, err = c.List()
		if list == nil {
			list = []queue.Summary{} // "[]", not "null", for scripts
		}
		v = list
	case "show":
		v, err = c.Show(ids[0])
	default:
		return &exitError{code: 2, msg: "-json goes with list or show"}
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// queueRequest sends one admin request and prints its result.
func queueRequest(c *control.Client, action string, ids []queue.ID, deleteAll bool, out io.Writer) error {
	switch action {
	case "list":
		list, err := c.List()
		if err != nil {
			return err
		}
		printQueue(out, list)
	case "show":
		d, err := c.Show(ids[0])
		if err != nil {
			return err
		}
		printDetail(out, d)
	case "flush":
		if err := c.Flush(ids...); err != nil {
			return err
		}
		if len(ids) == 0 {
			fmt.Fprintln(out, "flushed: all queued mail not on hold is being retried")
		} else {
			fmt.Fprintf(out, "flushed: %s\n", joinIDs(ids))
		}
	case "delete":
		if deleteAll {
			n, err := c.DeleteAll()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "deleted: %d messages\n", n)
			return nil
		}
		if err := c.Delete(ids...); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted: %s\n", joinIDs(ids))
	case "hold":
		if err := c.Hold(ids[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "held: %s (release it with 'smarthost queue release %s')\n", ids[0], ids[0])
	case "release":
		if err := c.Release(ids[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "released: %s\n", ids[0])
	}
	return nil
}

func joinIDs(ids []queue.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, " ")
}

// mailqIndent is where recipients start, under the sender column.
const mailqIndent = 48

// printQueue prints the queue the way Postfix's mailq does: one block per
// message (ID with '*' when an attempt is running or '!' when held, size,
// arrival, sender), then its recipients, each after the last reply in
// parentheses, then a total.
func printQueue(w io.Writer, list []queue.Summary) {
	if len(list) == 0 {
		fmt.Fprintln(w, "Mail queue is empty")
		return
	}
	fmt.Fprintf(w, "%-16s %8s %-20s  %s\n", "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
	var total int64
	for _, s := range list {
		total += s.Size
		mark := " "
		switch {
		case s.Held:
			mark = "!"
		case s.Active:
			mark = "*"
		}
		fmt.Fprintf(w, "%-16s %8d %-20s  %s\n", string(s.ID)+mark, s.Size, s.Arrival.Local().Format("Mon Jan _2 15:04:05"), sender(s.From))
		for _, r := range s.Recipients {
			if r.Reply != "" && r.State != queue.StateDelivered {
				fmt.Fprintf(w, "%*s(%s)\n", mailqIndent, "", r.Reply)
			}
			fmt.Fprintf(w, "%*s%s  [%s]\n", mailqIndent, "", r.Address, recipientState(r))
		}
		fmt.Fprintln(w)
	}
	noun := "Requests"
	if len(list) == 1 {
		noun = "Request"
	}
	fmt.Fprintf(w, "-- %d Kbytes in %d %s.\n", (total+1023)/1024, len(list), noun)
}

// sender prints the null sender as Postfix does.
func sender(from string) string {
	if from == "" {
		return "MAILER-DAEMON"
	}
	return from
}

func recipientState(r queue.Recipient) string {
	s := string(r.State)
	if r.Expired {
		s += ", expired"
	}
	if r.Attempts > 0 {
		s += fmt.Sprintf(", %d attempts", r.Attempts)
	}
	if r.DSNID != "" {
		s += ", DSN " + string(r.DSNID)
	}
	return s
}

// printDetail prints one message as postcat -e would: envelope, recipient
// states, attempt history and header. Never the body.
func printDetail(w io.Writer, d queue.Detail) {
	const layout = "2006-01-02 15:04:05 -0700"
	state := "queued"
	switch {
	case d.Held:
		state = "on hold"
	case d.Active:
		state = "delivery in progress"
	case d.Attempts > 0:
		state = "deferred"
	}
	fmt.Fprintf(w, "*** ENVELOPE ***\n")
	fmt.Fprintf(w, "queue_id:     %s\n", d.ID)
	fmt.Fprintf(w, "state:        %s\n", state)
	fmt.Fprintf(w, "arrival:      %s\n", d.Arrival.Local().Format(layout))
	fmt.Fprintf(w, "size:         %d bytes\n", d.Size)
	fmt.Fprintf(w, "sender:       <%s>\n", d.From)
	fmt.Fprintf(w, "attempts:     %d\n", d.Attempts)
	if !d.NextAttempt.IsZero() {
		fmt.Fprintf(w, "next_attempt: %s\n", d.NextAttempt.Local().Format(layout))
	}
	o := d.Origin
	fmt.Fprintf(w, "origin:       listener=%s role=%s client_ip=%s helo=%s user=%s tls=%s\n",
		dash(o.Listener), dash(o.Role), dash(o.ClientIP), dash(o.Helo), dash(o.User), dash(o.TLS))
	if d.UTF8 || d.EightBit {
		fmt.Fprintf(w, "body:         smtputf8=%v 8bitmime=%v\n", d.UTF8, d.EightBit)
	}
	fmt.Fprintf(w, "\n*** RECIPIENTS ***\n")
	for _, r := range d.Recipients {
		fmt.Fprintf(w, "%s  [%s]\n", r.Address, recipientState(r))
		if r.Reply != "" {
			fmt.Fprintf(w, "    last reply: %s\n", r.Reply)
		}
		if r.RemoteMTA != "" {
			fmt.Fprintf(w, "    remote MTA: %s\n", r.RemoteMTA)
		}
	}
	fmt.Fprintf(w, "\n*** HISTORY ***\n")
	if len(d.History) == 0 {
		fmt.Fprintln(w, "no delivery attempts yet")
	}
	for _, a := range d.History {
		fmt.Fprintf(w, "%s attempt %d %s: %s via %s mx=%s tls=%s\n    %s\n",
			a.Time.Local().Format(layout), a.Number, a.Outcome, strings.Join(a.Recipients, ", "),
			dash(a.NextHop), dash(a.MX), dash(a.TLS), dash(a.Reply))
	}
	fmt.Fprintf(w, "\n*** MESSAGE HEADER ***\n")
	io.WriteString(w, strings.ReplaceAll(d.Header, "\r\n", "\n"))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
