// Package dnscheck checks the DNS of a mail domain for use with this
// smarthost, behind `smarthost dns check DOMAIN`: the records receivers
// consult before they trust mail from the domain, and the ones senders
// consult to deliver to it. Each finding is one line, OK / INFO / WARN /
// ERROR, with what was found and how to fix it; [Report] collects them.
//
// It owns the checks and their advice:
//
//   - MX (RFC 5321 §5.1, null MX RFC 7505): records exist, each host
//     resolves, one of them is this server (by hostname or address).
//   - SPF (RFC 7208): exactly one record; the syntax of every term; the
//     limits of §4.6.4 (10 DNS-querying terms, 2 void lookups) counted
//     through include and redirect; how it ends (-all, ~all, ?all, +all,
//     none); and whether it authorises each address of the hostname,
//     evaluated with the SPF library (blitiri.com.ar/go/spf) that checks
//     inbound mail.
//   - DKIM (RFC 6376): for each configured key that signs for the domain,
//     that its published record matches the private key (relay/dkim's
//     CheckKey, shared with `smarthost dkim testkey`), t=y, key size.
//   - DMARC (RFC 7489): the record at the domain or its organizational
//     domain, its syntax, policy, pct, rua (and §7.1's consent of an
//     external report destination), and whether the keys that sign for
//     the domain give aligned DKIM.
//   - PTR: forward-confirmed reverse DNS of each address of the hostname.
//   - MTA-STS (RFC 8461): the TXT record and, with an HTTP client, the
//     policy it announces; TLS-RPT (RFC 8460) as optional information.
//
// It must not touch SMTP, the spool or the configuration files; it reads
// DNS only through the [resolve.Resolver] it is given and HTTPS only
// through the *http.Client it is given ([PolicyClient] for real use). It
// never logs: the command prints the report.
//
// # Invariants
//
//   - A failed lookup (SERVFAIL, timeout, refused) is reported as a DNS
//     failure, "dns-temporary", never as a missing record.
//   - Every WARN and ERROR carries a fix; the command exits 1 if and only
//     if there is an ERROR.
//   - A [Checker] is safe for concurrent use once its fields are set.
//
// # Decisions
//
//   - The SPF lookup count is static: every DNS-querying term counts, as
//     for an address that matches none of them (the case that hits the
//     limit). Terms with macros (%{i} …) depend on the message: they count
//     once and are not followed, and the report lists them.
//   - DMARC records are parsed here, not with go-msgauth: see dmarcRecord.
//   - Missing SPF or DMARC is an ERROR: large receivers require both of
//     bulk senders and treat mail without them as suspect. Missing
//     MTA-STS or TLS-RPT is INFO: both are optional.
//   - The MX not pointing here is a WARN: a domain may receive its mail
//     elsewhere and send only through smarthost.
//
// # Glossary
//
// FCrDNS: forward-confirmed reverse DNS, an address whose PTR names a host
// that resolves back to the address. Void lookup: a query answered with
// no record (NXDOMAIN or an empty answer). Alignment: the DKIM d= (or
// envelope sender) domain being the From domain (strict) or sharing its
// organizational domain (relaxed), RFC 7489 §3.1.
package dnscheck
