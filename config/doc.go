// Package config owns smarthost's TOML configuration: the schema, its
// defaults, loading and validation.
//
// It imports no other smarthost package; everything else imports it. Load
// returns either a fully valid [Config] or an [*Error] listing every problem
// found in one pass, each naming the file, the line, the key, what is wrong
// and how to fix it:
//
//	smarthost.toml:31: dkim.key[0].private_key: no such file; create it with `smarthost dkim keygen`
//
// Values with a syntax of their own (sizes, durations, next hops, address
// patterns, networks) are parsed once, here, into typed values, so the rest of
// the program never parses configuration strings again.
//
// Invariants: a *Config returned without error has every field valid and
// every default filled in; relative paths in it have been resolved against
// the directory of the configuration file.
package config
