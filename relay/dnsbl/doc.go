// Package dnsbl looks up an SMTP client's IP address in DNS blocklists
// (RFC 5782), like Postfix's reject_rbl_client: for 192.0.2.1 and the zone
// zen.spamhaus.org it asks for the A record of
// 1.2.0.192.zen.spamhaus.org; an IPv6 address is written as 32 reversed
// nibbles. The zones of inbound.dnsbl are asked in parallel.
//
// What an answer means:
//
//   - an address in 127.0.0.0/8 lists the client (RFC 5782 §2.1; the
//     exact address says which sub-list, e.g. Spamhaus ZEN's 127.0.0.2 SBL,
//     127.0.0.4 XBL, 127.0.0.10 PBL);
//   - an address in 127.255.255.0/24 is an error, not a listing:
//     Spamhaus answers 127.255.255.254 to queries through public
//     resolvers, 127.255.255.255 to excessive queries and .252 to a
//     typing error in the zone, and treating those as listings would
//     refuse all mail;
//   - any other address (outside 127.0.0.0/8) is an error too: no list
//     answers that, but resolvers that rewrite NXDOMAIN to an advertising
//     page do;
//   - NXDOMAIN (or no A record) means not listed;
//   - a DNS failure (SERVFAIL, timeout) means not listed, and is reported
//     so the caller can log it: blocklists fail open, as in Postfix, so a
//     list's outage never stops mail.
//
// The package owns only the lookups. It does not decide whether a client
// is exempt (trusted networks, authenticated users), does not cache (the
// resolver does), and does not know the reply: the session refuses a
// listed client with 554 5.7.1 naming [Result.Zone] (relay/reply).
package dnsbl
