package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/term"

	"smarthost/auth"
	"smarthost/config"
)

const userSynopsis = `user add|passwd|del NAME [-config F | -users FILE]
       smarthost user list [-config F | -users FILE]

The users file is auth.users_file of the configuration, or FILE with -users
(which does not read the configuration at all). add and passwd read the
password from standard input when it is not a terminal (one line), and
otherwise ask for it twice without echo. The running server sees a change
after 'systemctl reload smarthost' (SIGHUP).`

// runUser is `smarthost user`: it edits the users file through
// auth.UsersFile.
func runUser(args []string, io stdio) error {
	fs := newFlagSet("user", userSynopsis, io)
	configPath := configFlag(fs)
	usersPath := fs.String("users", "", "users `file` to edit instead of the configuration's auth.users_file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	action, names := pos[0], pos[1:]
	wantNames := 1
	if action == "list" {
		wantNames = 0
	}
	switch action {
	case "add", "passwd", "del", "list":
	default:
		fmt.Fprintf(io.err, "smarthost user: unknown action %q\n", action)
		fs.Usage()
		return errUsage
	}
	if len(names) != wantNames {
		fmt.Fprintf(io.err, "smarthost user %s: want %d user name(s), got %d\n", action, wantNames, len(names))
		fs.Usage()
		return errUsage
	}
	path, err := usersFilePath(*usersPath, *configPath)
	if err != nil {
		return err
	}
	f := auth.UsersFile{Path: path}
	switch action {
	case "list":
		return listUsers(f, io)
	case "del":
		if err := f.Delete(names[0]); err != nil {
			return userError(err, f, names[0])
		}
		fmt.Fprintf(io.out, "deleted user %s from %s\n%s\n", names[0], path, reloadHint)
		return nil
	}
	name := names[0]
	// Catch the obvious mistakes before asking for a password; Add and
	// SetPassword check again under the file lock.
	if err := checkBeforePrompt(f, action, name); err != nil {
		return err
	}
	password, err := readNewPassword(io, name)
	if err != nil {
		return err
	}
	if action == "add" {
		if err := f.Add(name, password); err != nil {
			return userError(err, f, name)
		}
		fmt.Fprintf(io.out, "added user %s to %s\n%s\n", name, path, reloadHint)
		return nil
	}
	if err := f.SetPassword(name, password); err != nil {
		return userError(err, f, name)
	}
	fmt.Fprintf(io.out, "changed the password of %s in %s\n%s\n", name, path, reloadHint)
	return nil
}

const reloadHint = "run 'systemctl reload smarthost' (or send SIGHUP) so the running server uses it"

// usersFilePath picks the users file: -users if given, else
// auth.users_file from the configuration. config.Load returns no
// configuration at all when any part of it is wrong, so a broken key
// elsewhere stops this path; the error says so and points to -users,
// rather than guessing at a file the server may not use.
func usersFilePath(usersFlag, configPath string) (string, error) {
	if usersFlag != "" {
		return usersFlag, nil
	}
	cfg, _, err := config.Load(configPath)
	if err != nil {
		return "", fmt.Errorf("cannot find auth.users_file: %w\n(fix the configuration, or name the users file with -users FILE)", err)
	}
	return cfg.Auth.UsersFile, nil
}

// checkBeforePrompt refuses an add of an existing user or a passwd of a
// missing one before the password is typed.
func checkBeforePrompt(f auth.UsersFile, action, name string) error {
	if err := auth.ValidateUserName(name); err != nil {
		return err
	}
	users, err := f.List()
	if errors.Is(err, os.ErrNotExist) {
		if action == "passwd" {
			return fmt.Errorf("no such user %q: %s does not exist", name, f.Path)
		}
		return nil
	}
	if err != nil {
		return err
	}
	exists := false
	for _, u := range users {
		exists = exists || u.Name == name
	}
	switch {
	case action == "add" && exists:
		return fmt.Errorf("user %q already exists in %s; use 'smarthost user passwd %s' to change the password", name, f.Path, name)
	case action == "passwd" && !exists:
		return fmt.Errorf("no such user %q in %s; use 'smarthost user add %s'", name, f.Path, name)
	}
	return nil
}

// userError rewords the editing errors a user is likely to meet; the
// others (file and lock problems) already name the file.
func userError(err error, f auth.UsersFile, name string) error {
	switch {
	case errors.Is(err, auth.ErrUserExists):
		return fmt.Errorf("user %q already exists in %s", name, f.Path)
	case errors.Is(err, auth.ErrUnknownUser):
		return fmt.Errorf("no such user %q in %s", name, f.Path)
	}
	return err
}

func listUsers(f auth.UsersFile, std stdio) error {
	users, err := f.List()
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no users yet: %s does not exist; add one with 'smarthost user add NAME'", f.Path)
	}
	if err != nil {
		return err
	}
	if len(users) == 0 {
		fmt.Fprintf(std.err, "no users in %s\n", f.Path)
		return nil
	}
	w := tabwriter.NewWriter(std.out, 0, 8, 2, ' ', 0)
	for _, u := range users {
		switch {
		case u.Problem != "":
			fmt.Fprintf(w, "%s\tunusable: %s\n", u.Name, u.Problem)
		case strings.HasPrefix(u.Scheme, "bcrypt"):
			fmt.Fprintf(w, "%s\t%s (migrated; 'smarthost user passwd %s' upgrades it to argon2id)\n", u.Name, u.Scheme, u.Name)
		default:
			fmt.Fprintf(w, "%s\t%s\n", u.Name, u.Scheme)
		}
	}
	return w.Flush()
}

// readNewPassword reads the new password. From a pipe or file it is the
// first line, without its line end, so scripts can do `echo pw | smarthost
// user add alice`. From a terminal it is asked for twice, without echo,
// and both must agree. inIsTerminal with a reader that is not a real
// terminal (tests) reads the two answers as lines.
func readNewPassword(std stdio, name string) (string, error) {
	r := bufio.NewReader(std.in)
	var password string
	if !std.inIsTerminal {
		line, err := r.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("no password on standard input: %w; give it as one line", err)
		}
		password = trimLineEnd(line)
	} else {
		first, err := promptSecret(std, r, fmt.Sprintf("New password for %s: ", name))
		if err != nil {
			return "", err
		}
		if err := auth.ValidatePassword(first); err != nil {
			return "", err
		}
		second, err := promptSecret(std, r, "Retype the password: ")
		if err != nil {
			return "", err
		}
		if first != second {
			return "", fmt.Errorf("the passwords do not match; nothing changed")
		}
		password = first
	}
	if err := auth.ValidatePassword(password); err != nil {
		return "", err
	}
	return password, nil
}

// trimLineEnd removes a final LF or CRLF.
func trimLineEnd(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}

// promptSecret writes prompt to the error stream and reads one answer.
func promptSecret(std stdio, r *bufio.Reader, prompt string) (string, error) {
	fmt.Fprint(std.err, prompt)
	if f, ok := std.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := readNoEcho(f)
		fmt.Fprintln(std.err)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password: %w", err)
	}
	return trimLineEnd(line), nil
}

// readNoEcho reads a line from the terminal f with echo off. Ctrl-C would
// otherwise leave the shell without echo, so an interrupt restores the
// terminal before the process exits with the shell's status for SIGINT.
func readNoEcho(f *os.File) ([]byte, error) {
	fd := int(f.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sigs)
		close(done)
	}()
	go func() {
		select {
		case <-sigs:
			term.Restore(fd, state)
			fmt.Fprintln(os.Stderr)
			os.Exit(130)
		case <-done:
		}
	}()
	return term.ReadPassword(fd)
}
