// Package interop starts the real programs smarthost's interoperability
// tests talk to — dnsmasq as a DNS server, and the checks for swaks,
// Postfix and dkimpy — all on loopback.
//
// It is imported only by tests. A test that needs a program calls
// [Require]: when the program is missing the test is skipped with a clear
// message, except under CI=true, where .ci/run has installed everything and
// a missing program fails the test instead.
//
// Every process it starts is stopped by t.Cleanup; nothing outlives a test.
package interop
