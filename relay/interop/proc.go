package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is a live process found in /proc.
type proc struct {
	pid  int
	comm string
}

func (p proc) String() string { return fmt.Sprintf("%d (%s)", p.pid, p.comm) }

// processesOf returns the live processes (zombies excluded: they hold
// nothing but a process table slot, and their reaping is up to PID 1)
// that are in process group pgid or whose working directory is dir or
// below it. Postfix's daemons run in master's process group with their
// working directory in the queue directory, so together the two catch a
// daemon even if it had left the group. It reads Linux's /proc; elsewhere
// it finds nothing.
func processesOf(pgid int, dir string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var found []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, state, group, ok := procStat(pid)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		if group == pgid {
			found = append(found, proc{pid, comm})
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && within(cwd, dir) {
			found = append(found, proc{pid, comm})
		}
	}
	return found
}

// procStat reads the command name, state and process group of pid from
// /proc/PID/stat: "PID (COMM) STATE PPID PGRP ...", where COMM may itself
// contain spaces and parentheses, so the fields are counted from the last
// ")".
func procStat(pid int) (comm string, state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return "", 0, 0, false
	}
	pgrp, err = strconv.Atoi(fields[2])
	if err != nil {
		return "", 0, 0, false
	}
	return s[open+1 : end], fields[0][0], pgrp, true
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// waitGone waits up to timeout for [processesOf](pgid, dir) to be empty
// and returns what is still there.
func waitGone(pgid int, dir string, timeout time.Duration) []proc {
	var left []proc
	poll(timeout, func() bool {
		left = processesOf(pgid, dir)
		return len(left) == 0
	})
	return left
}
