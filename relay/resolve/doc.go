// Package resolve is smarthost's view of DNS: a [Resolver] interface shaped
// like *net.Resolver, and [New], which builds one from the [dns] section so
// that a specific server (a local validating resolver, or dnsmasq in tests)
// can replace the system resolver.
//
// Everything that looks up DNS (routing, inbound checks, dkim testkey, dns
// check) takes a Resolver, so tests inject resolvetest.Resolver and never
// touch the network. It owns no caching and no policy: callers decide what
// NXDOMAIN or SERVFAIL mean for them (see [IsNotFound], [IsTemporary]).
package resolve
