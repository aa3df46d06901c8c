// Package route decides where mail goes next: for each recipient it picks a
// next hop from the transport map, the relayhost or the recipient domain's
// MX records, and turns a next hop into the ordered list of hosts to try.
//
// It owns the routing policy of smarthost, in Postfix's terms:
//
//  1. [Router.Route]: transport(5) lookup by full address, then domain,
//     then parent domains (".example.com" keys), then "*"; else relayhost;
//     else "smtp:<recipient domain>" with MX lookup.
//  2. [Router.Hosts]: a bracketed next hop is that one host; an MX next hop
//     is its MX hosts sorted by preference, equal preferences shuffled (RFC
//     5321 §5.1), with the domain's own A/AAAA records when it has no MX.
//     A null MX (RFC 7505) and a non-existent domain are permanent
//     failures; a DNS failure is temporary.
//  3. [Router.IsRelayDestination]: whether an mx listener accepts a
//     recipient (relay_domains, or a transport entry naming the address or
//     its domain; never "*").
//
// It must not open SMTP connections (relay/deliver does) or parse next-hop
// strings (config has parsed them once into [config.NextHop]). Every DNS
// query goes through the injected [resolve.Resolver].
//
// Invariants: a Router never changes after [New] and is safe for
// concurrent use; every error from [Router.Hosts] is an [*Error] that says
// whether it is permanent and carries an RFC 3463 enhanced status code.
package route
