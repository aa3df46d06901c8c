// Package resolvetest is an in-memory resolve.Resolver for fast unit tests.
// Names are matched case-insensitively, with or without a trailing dot. Use
// names under .test, .invalid or example.* only.
package resolvetest
