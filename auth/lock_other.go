//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package auth

import (
	"io/fs"
	"os"
)

// lockDir does nothing where flock(2) is missing: concurrent edits may then
// lose one another's change, though the atomic rename still keeps the file
// whole. smarthost runs on Linux; this keeps the package building elsewhere.
func lockDir(string) (func(), error) { return func() {}, nil }

// keepOwner does nothing where file ownership is not Unix-like.
func keepOwner(*os.File, fs.FileInfo) error { return nil }
