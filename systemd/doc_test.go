// Package systemd_test checks the files in systemd/ that ship with
// smarthost: the unit's hardening score, and that the example configuration
// passes `smarthost check` once the files it names exist.
package systemd_test
