package interop

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// How long the instance's own operations may take before the test fails.
const (
	// postfixStartTimeout bounds one start: master up, its log line
	// written and, with a listener, smtpd's 220 greeting read.
	postfixStartTimeout = 20 * time.Second
	// postfixStopTimeout bounds each stage of a stop: the master exiting
	// after SIGTERM, then its children after it.
	postfixStopTimeout = 10 * time.Second
	// postfixCommandTimeout bounds sendmail, postqueue and postfix check.
	postfixCommandTimeout = 30 * time.Second
)

// Postfix is a private Postfix instance started by [StartPostfix]: its own
// configuration, queue, data and mailbox directories under Dir, its own
// master(8) running as a child of the test process, and its log in
// Dir/maillog. It is stopped, and Dir removed, when the test ends.
//
// Its methods must be called from one goroutine at a time (the test's),
// except [Postfix.Log], [Postfix.Mailbox] and [Postfix.Queue], which only
// read.
type Postfix struct {
	// Addr is smtpd's address, "127.0.0.1:PORT", or "" when the instance
	// was started without [PostfixOptions.Listen]. It stays the same
	// across [Postfix.Stop] and [Postfix.Start].
	Addr string
	// Dir is the instance's root: etc/ (config_directory: main.cf,
	// master.cf, maps), spool/ (queue_directory), data/
	// (data_directory), mail/ (the mailbox) and maillog.
	Dir string

	opts    PostfixOptions
	bin     postfixPrograms
	mailbox mailboxOwner

	// master is the running master(8), nil while stopped; exited is
	// closed once it has been waited for.
	master *exec.Cmd
	exited chan struct{}
}

// postfixPrograms are the absolute paths of the Postfix programs used.
type postfixPrograms struct {
	postfix, postqueue, sendmail, master string
}

// mailboxOwner is the uid and gid virtual(8) delivers as.
type mailboxOwner struct{ uid, gid int }

// errAddrInUse is returned by [Postfix.startMaster] when smtpd's port was
// taken, so that [StartPostfix] tries another.
var errAddrInUse = errors.New("address already in use")

// StartPostfix creates a Postfix instance configured by opts, starts it
// and returns once it is ready: its master(8) has finished initialising
// and, with opts.Listen, smtpd has answered with its 220 greeting. It
// registers a t.Cleanup that stops the instance (leaving no process
// behind), logs its maillog when the test failed, and removes its
// directory.
//
// Postfix must be installed (Debian package postfix; see [Require]), and
// the test must run as root: master(8) starts as root and runs its daemons
// as mail_owner (postfix) with the setgid group postdrop, users the Debian
// package creates. Otherwise the test is skipped, or fails under CI=true.
//
// The instance never touches /etc/postfix or the system's queue: every
// command is given the instance's configuration directory (master -c,
// sendmail -C, postqueue -c). As root that needs no
// alternate_config_directories entry in /etc/postfix/main.cf: Postfix
// checks that list only for non-root users.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	bin := requirePostfix(t)
	if opts.Relay.User != "" {
		requireSASLPlugins(t)
	}
	opts = opts.withDefaults()
	host, port, err := opts.listenAddr()
	if err != nil {
		t.Fatal(err)
	}
	owner, err := mailboxUser()
	if err != nil {
		t.Fatal(err)
	}
	// A short path under /tmp, not t.TempDir: unix socket names (such as
	// DIR/spool/private/proxywrite) must fit in sun_path's 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "pf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postfix{Dir: dir, opts: opts, bin: bin, mailbox: owner}
	if err := p.writeConfig(); err != nil {
		t.Fatal(err)
	}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postfix %s maillog:\n%s", p.Dir, p.Log())
		}
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	})

	// A port we chose may be taken between our check and master's bind;
	// master then exits and we try another. A port asked for is tried once.
	tries := 1
	if opts.Listen != "" && port == 0 {
		tries = 5
	}
	for try := 0; try < tries; try++ {
		if opts.Listen != "" {
			chosen := port
			if chosen == 0 {
				if chosen, err = pickPort(host); err != nil {
					t.Fatal(err)
				}
			}
			p.Addr = net.JoinHostPort(host, strconv.Itoa(chosen))
		}
		err = p.startMaster(t)
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Start starts a stopped instance again with the same configuration and
// smtpd address, and returns once it is ready, as [StartPostfix] does.
// Mail posted with [Postfix.Sendmail] while it was stopped is then picked
// up and delivered. It fails the test if the instance is running, or if
// smtpd's port has been taken meanwhile.
func (p *Postfix) Start(t testing.TB) {
	t.Helper()
	if p.master != nil {
		t.Fatalf("postfix %s: Start: already running", p.Dir)
	}
	if err := p.startMaster(t); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the instance, as `postfix stop` does, and returns once master
// and every process it started have exited: SIGTERM to master, which
// passes it to its process group and exits; anything still running after
// postfixStopTimeout is killed and fails the test. (Daemons that outlive
// master are reaped by PID 1, so they may linger as zombies for a while;
// a zombie runs nothing and holds no socket or file.) The queue and mailbox are kept, so
// [Postfix.Start] resumes where it left off. While stopped, connections
// to Addr are refused. Stop on a stopped instance does nothing.
func (p *Postfix) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}

// Running reports whether the instance's master is running.
func (p *Postfix) Running() bool { return p.master != nil }

// Log returns the instance's log so far (maillog_file, written by
// postlogd(8)), for failure messages and for assertions on what Postfix
// did, such as "Verified TLS connection established".
func (p *Postfix) Log() string {
	b, err := os.ReadFile(p.logPath())
	if err != nil {
		return fmt.Sprintf("(no maillog: %v)", err)
	}
	return string(b)
}

func (p *Postfix) etc() string     { return filepath.Join(p.Dir, "etc") }
func (p *Postfix) logPath() string { return filepath.Join(p.Dir, "maillog") }

// check runs `postfix check`, which creates the queue and data
// directories with the owners and modes Postfix insists on, and reports
// configuration errors before master is started.
func (p *Postfix) check() error {
	out, err := p.command(p.bin.postfix, "-c", p.etc(), "check")
	if err != nil {
		return fmt.Errorf("postfix: postfix -c %s check: %v\n%s\n%s", p.etc(), err, out, p.Log())
	}
	return nil
}

// startMaster runs master(8) in the foreground as a child of this process
// and waits until it is ready. On failure nothing is left running.
func (p *Postfix) startMaster(t testing.TB) error {
	if err := p.rewriteMasterCF(); err != nil {
		return err
	}
	logStart := fileSize(p.logPath())
	out, err := os.Create(filepath.Join(p.Dir, "master.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	// Without -w master does not fork: it stays our child, so we can wait
	// for it. It calls setsid, so its daemons are in a process group of
	// their own, which master signals when it is told to stop. -e makes
	// master exit by itself should this test binary die without running
	// its cleanups (a panic, a -timeout), so no instance outlives the run
	// by long.
	lifetime := strconv.Itoa(int(masterLifetime(t).Seconds()))
	cmd := exec.Command(p.bin.master, "-c", p.etc(), "-e", lifetime)
	cmd.Dir = p.Dir
	// Output goes to a file, not a pipe: the daemons inherit it, and
	// cmd.Wait would otherwise wait for the last of them.
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postfix: start master: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	p.master, p.exited = cmd, exited
	if err := p.waitReady(logStart); err != nil {
		stopErr := p.stop()
		said := readFrom(p.logPath(), logStart)
		if b, _ := os.ReadFile(out.Name()); len(b) > 0 {
			said += string(b)
		}
		// master reports a failed bind only to syslog (/dev/log), before
		// its own log service runs, so look at the port instead: with
		// master gone, a port we cannot bind is someone else's.
		if p.Addr != "" && portTaken(p.Addr) {
			return fmt.Errorf("postfix: smtpd on %s: %w", p.Addr, errAddrInUse)
		}
		if stopErr != nil {
			err = fmt.Errorf("%v; %v", err, stopErr)
		}
		if said == "" {
			said = "(nothing: master logs errors before it is up to syslog only; " +
				"run `postfix -c " + p.etc() + " start` and read the system log)"
		}
		return fmt.Errorf("postfix %s: %v (%v); postfix said:\n%s", p.Dir, err, cmd.ProcessState, said)
	}
	return nil
}

// portTaken reports whether addr cannot be bound because it is in use.
func portTaken(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	l.Close()
	return false
}

// waitReady waits until master logs that it has started (it binds every
// service socket before that) and, with a listener, smtpd greets.
func (p *Postfix) waitReady(logStart int64) error {
	deadline := time.Now().Add(postfixStartTimeout)
	started := false
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return errors.New("master exited")
		default:
		}
		if strings.Contains(readFrom(p.logPath(), logStart), "daemon started") {
			started = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !started {
		return fmt.Errorf("master did not log \"daemon started\" within %v", postfixStartTimeout)
	}
	if p.Addr == "" {
		return nil
	}
	return greets(p.Addr, time.Until(deadline))
}

// greets connects to addr and reads a 220 greeting.
func greets(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("smtpd: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("smtpd on %s: no greeting: %w", addr, err)
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("smtpd on %s greeted %q", addr, strings.TrimSpace(line))
	}
	c.Write([]byte("QUIT\r\n"))
	return nil
}

// stop ends master and its process group; see [Postfix.Stop].
func (p *Postfix) stop() error {
	if p.master == nil {
		return nil
	}
	pid := p.master.Process.Pid
	defer func() { p.master, p.exited = nil, nil }()
	p.master.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(postfixStopTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
	}
	// master signals its group and exits at once; its daemons follow
	// within milliseconds. Anything still running (or running in our
	// directories, should a daemon have left the group) is killed.
	if leftovers := waitGone(pid, p.Dir, postfixStopTimeout); len(leftovers) > 0 {
		for _, proc := range leftovers {
			syscall.Kill(proc.pid, syscall.SIGKILL)
		}
		if still := waitGone(pid, p.Dir, postfixStopTimeout); len(still) > 0 {
			return fmt.Errorf("postfix %s: processes left after stop: %v", p.Dir, still)
		}
		return fmt.Errorf("postfix %s: had to kill processes left after stop: %v", p.Dir, leftovers)
	}
	return nil
}

// masterLifetime is how long master may run before it exits by itself:
// until a minute past the test binary's deadline, or an hour without one.
func masterLifetime(t testing.TB) time.Duration {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			return time.Until(deadline) + time.Minute
		}
	}
	return time.Hour
}

// requirePostfix finds the Postfix programs, and skips (or fails under CI)
// when they or the privileges they need are missing.
func requirePostfix(t testing.TB) postfixPrograms {
	t.Helper()
	paths := Require(t, "postfix", "postconf")
	if os.Geteuid() != 0 {
		const why = "a private Postfix instance needs root (master(8) starts as root and runs its daemons as user postfix)"
		if InCI() {
			t.Fatalf("%s; CI=true requires it: run the tests as root", why)
		}
		t.Skipf("skipping: %s; run the tests as root", why)
	}
	for _, name := range []string{"postfix"} {
		if _, err := user.Lookup(name); err != nil {
			missing(t, "user "+name+" does not exist (the Debian package postfix creates it)")
		}
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		missing(t, "group postdrop does not exist (the Debian package postfix creates it)")
	}
	out, err := exec.Command(paths["postconf"], "-dh", "command_directory", "daemon_directory").Output()
	if err != nil {
		t.Fatalf("postconf -dh command_directory daemon_directory: %v", err)
	}
	dirs := strings.Fields(string(out))
	if len(dirs) != 2 {
		t.Fatalf("postconf -dh command_directory daemon_directory = %q", out)
	}
	return postfixPrograms{
		postfix:   paths["postfix"],
		postqueue: filepath.Join(dirs[0], "postqueue"),
		sendmail:  filepath.Join(dirs[0], "sendmail"),
		master:    filepath.Join(dirs[1], "master"),
	}
}

// requireSASLPlugins checks that Cyrus SASL can do PLAIN, which the
// Postfix SMTP client needs to authenticate. Debian's libsasl2-2 only
// recommends the plugins (libsasl2-modules), so an install with
// --no-install-recommends lacks them, and Postfix then defers mail with
// "SASL authentication failed; cannot authenticate to server ...: no
// mechanism available".
func requireSASLPlugins(t testing.TB) {
	t.Helper()
	for _, pattern := range []string{"/usr/lib/*/sasl2/libplain.so*", "/usr/lib/sasl2/libplain.so*", "/usr/lib64/sasl2/libplain.so*"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return
		}
	}
	missing(t, "Cyrus SASL's PLAIN plugin is not installed (Debian package libsasl2-modules); Postfix's SMTP client cannot AUTH without it")
}

// mailboxUser is who owns delivered mail: nobody, an unprivileged user
// every Debian system has. virtual(8) refuses root, and mail_owner
// (postfix) should own nothing but the queue.
func mailboxUser() (mailboxOwner, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return mailboxOwner{}, fmt.Errorf("postfix: mailbox owner: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return mailboxOwner{}, fmt.Errorf("postfix: mailbox owner nobody has uid %q gid %q", u.Uid, u.Gid)
	}
	return mailboxOwner{uid: uid, gid: gid}, nil
}

// fileSize is the size of the file at path, 0 when it does not exist.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// readFrom returns the file's contents from offset on, "" on error.
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}
