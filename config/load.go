package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File    string
	Line    int    // 1-based; 0 when unknown
	Key     string // e.g. "dkim.key[0].private_key"; "" for the file as a whole
	Message string // what is wrong
	Fix     string // how to fix it; may be empty
	// Warning marks a problem that does not stop smarthost from running,
	// such as a plaintext listener on a public address.
	Warning bool
}

// String formats the problem as file:line: key: message; fix.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(filepath.Base(p.File))
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString("; " + p.Fix)
	}
	return b.String()
}

// Error is returned by [Load] when the configuration has problems. It lists
// all of them, not just the first.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes and validates the configuration file at path. On
// success it returns a complete configuration and any warnings; on failure
// it returns an [*Error] listing every problem (warnings included) or a
// plain error when the file cannot be read at all.
func Load(path string) (*Config, []Problem, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, string(src))
}

// Parse is [Load] for configuration text already in memory; path names it
// in problems and anchors relative paths.
func Parse(path, src string) (*Config, []Problem, error) {
	c := &Config{File: path}
	md, err := toml.Decode(src, c)
	if err != nil {
		return nil, nil, &Error{Problems: []Problem{decodeProblem(path, err)}}
	}
	v := &validator{file: path, lines: keyLines(src)}
	c.lines = v.lines
	for _, k := range md.Undecoded() {
		v.errorf(undecodedPath(k), "unknown key", "remove it or check its spelling against the example smarthost.toml")
	}
	c.applyDefaults(md.IsDefined)
	c.resolvePaths(filepath.Dir(path))
	v.validate(c)
	var errs, warnings []Problem
	for _, p := range v.problems {
		if p.Warning {
			warnings = append(warnings, p)
		} else {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return nil, warnings, &Error{Problems: append(errs, warnings...)}
	}
	return c, warnings, nil
}

// decodeProblem turns a TOML syntax or type error into a Problem with the
// parser's position.
func decodeProblem(path string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{File: path, Line: pe.Position.Line, Key: pe.LastKey, Message: pe.Message,
			Fix: "fix the TOML syntax (strings need quotes, tables need [brackets])"}
	}
	return Problem{File: path, Message: strings.TrimPrefix(err.Error(), "toml: "),
		Fix: "check the value's type against the example smarthost.toml"}
}

// undecodedPath formats a toml.Key the way keyLines does. Undecoded keys
// inside arrays of tables carry no index, so the first element's line is
// used by the lookup in validator.line.
func undecodedPath(k toml.Key) string {
	return keyPath(k...)
}

// resolvePaths makes file paths relative to the configuration file's
// directory absolute, so a config and its keys can move together.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.StateDir)
	abs(&c.TLS.CertFile)
	abs(&c.TLS.KeyFile)
	abs(&c.Auth.UsersFile)
	abs(&c.RelayRecipientsFile)
	for i := range c.DKIM.Keys {
		abs(&c.DKIM.Keys[i].PrivateKey)
	}
}
