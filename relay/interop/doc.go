// Package interop starts the real programs smarthost's interoperability
// tests talk to — dnsmasq as a DNS server ([StartDNS]), private Postfix
// instances as the home server and its outbound client ([StartPostfix]),
// and the checks for swaks and dkimpy — all on loopback.
//
// It is imported only by tests. A test that needs a program calls
// [Require]: when the program is missing the test is skipped with a clear
// message, except under CI=true, where .ci/run has installed everything and
// a missing program fails the test instead.
//
// Every process it starts is stopped by t.Cleanup; nothing outlives a test.
// A Postfix instance lives in a directory of its own under /tmp and never
// touches /etc/postfix or the system's queue.
package interop
