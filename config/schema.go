package config

// Config is the whole configuration file. Every field documents its TOML key,
// its default and its unit. The zero value is not useful; use [Load] or
// [Default].
type Config struct {
	// Hostname is the name used in the SMTP greeting, EHLO, Received headers
	// and DSNs. TOML key "hostname". Default: the machine's host name.
	// Example: "mail.example.org".
	Hostname string `toml:"hostname"`

	// StateDir holds the queue and other state (ACME cache, control socket).
	// TOML key "state_dir". Default "/var/lib/smarthost".
	StateDir string `toml:"state_dir"`

	// TrustedNetworks may relay without AUTH on submission listeners, like
	// Postfix's mynetworks. TOML key "trusted_networks". Default
	// ["127.0.0.0/8", "::1/128"]. A bare address means a single host.
	TrustedNetworks []Network `toml:"trusted_networks"`

	// RelayDomains are the domains whose mail mx listeners accept from
	// anyone. An entry ".example.com" matches every subdomain of example.com
	// (as in Postfix); "example.com" matches only itself. TOML key
	// "relay_domains". Default: none.
	RelayDomains []string `toml:"relay_domains"`

	// RelayRecipients lists the recipients mx listeners accept for relay
	// domains: "user@example.com", or "@example.com" for every address of a
	// domain. When it or RelayRecipientsFile is set, other recipients of a
	// relay domain are refused at RCPT with 550 5.1.1, so we never accept
	// mail we would have to bounce later (backscatter); like Postfix's
	// relay_recipient_maps. TOML key "relay_recipients". Default: none
	// (every recipient of a relay domain is accepted).
	RelayRecipients []string `toml:"relay_recipients"`
	// RelayRecipientsFile holds more such entries, one per line (# starts a
	// comment). TOML key "relay_recipients_file".
	RelayRecipientsFile string `toml:"relay_recipients_file"`
	// VerifyRecipients asks the next hop (the home server) whether it
	// accepts a recipient before accepting it ourselves, with a RCPT probe
	// whose answer is cached, like Postfix's reject_unverified_recipient. A
	// probe that fails temporarily answers 450, never 550. TOML key
	// "verify_recipients". Default false.
	VerifyRecipients bool `toml:"verify_recipients"`

	// TLS selects where certificates come from. TOML table [tls].
	TLS TLS `toml:"tls"`

	// Listeners are the SMTP endpoints. TOML array of tables [[listener]].
	// Default: "submissions" on :465 (implicit TLS, role submission) and
	// "smtp" on :25 (STARTTLS, role mx).
	Listeners []Listener `toml:"listener"`

	// Auth configures SMTP AUTH. TOML table [auth].
	Auth Auth `toml:"auth"`

	// DKIM configures signing of outbound mail. TOML table [dkim].
	DKIM DKIM `toml:"dkim"`

	// Transport maps a recipient address, domain, ".parent" domain or "*"
	// to a next hop, like Postfix's transport(5). TOML table [transport],
	// e.g. "example.com" = "smtp:[home.example.com]:10025". Default: empty
	// (deliver by MX lookup). An entry does not make a domain a relay
	// domain for mx listeners unless it names a domain or address; "*"
	// never does.
	Transport map[string]NextHop `toml:"transport"`

	// Delivery configures the outbound SMTP client. TOML table [delivery].
	Delivery Delivery `toml:"delivery"`

	// DNS selects the resolver. TOML table [dns].
	DNS DNS `toml:"dns"`

	// Limits bounds what clients may send. TOML table [limits].
	Limits Limits `toml:"limits"`

	// Inbound configures the checks of mail arriving on mx listeners. TOML
	// table [inbound].
	Inbound Inbound `toml:"inbound"`

	// Metrics configures the Prometheus endpoint. TOML table [metrics].
	Metrics Metrics `toml:"metrics"`

	// File is the path the configuration was loaded from ("" for [Default]).
	File string `toml:"-"`

	// lines maps key paths to their line in File, for [Config.Problem].
	lines map[string]int
}

// Problem returns a problem about key in this configuration, with the file
// and line filled in, for checks done after loading (keys, certificates,
// the users file) to report in the same form as [Load].
func (c *Config) Problem(key, message, fix string) Problem {
	v := validator{file: c.File, lines: c.lines}
	return Problem{File: c.File, Line: v.line(key), Key: key, Message: message, Fix: fix}
}

// TLS says where listener certificates come from: exactly one of a
// certificate/key file pair, ACME, or a self-signed certificate.
type TLS struct {
	// CertFile is a PEM certificate chain, e.g. Let's Encrypt's
	// fullchain.pem. TOML key "tls.cert_file". Reloaded when the file
	// changes on disk.
	CertFile string `toml:"cert_file"`
	// KeyFile is the PEM private key for CertFile, e.g. privkey.pem. TOML
	// key "tls.key_file".
	KeyFile string `toml:"key_file"`
	// ACMEDomains turns on ACME (Let's Encrypt) for these names. TOML key
	// "tls.acme_domains". The cache lives in state_dir/acme.
	ACMEDomains []string `toml:"acme_domains"`
	// ACMEEmail is the contact address given to the ACME CA. TOML key
	// "tls.acme_email".
	ACMEEmail string `toml:"acme_email"`
	// ACMEDirectory is the ACME directory URL. TOML key
	// "tls.acme_directory". Default: Let's Encrypt production.
	ACMEDirectory string `toml:"acme_directory"`
	// ACMEHTTPAddress is where the HTTP-01 challenge is answered: the ACME
	// CA connects to port 80 of each name (TLS-ALPN-01 needs port 443, which
	// an SMTP server does not own). TOML key "tls.acme_http_address".
	// Default ":80".
	ACMEHTTPAddress string `toml:"acme_http_address"`
	// SelfSigned makes a throw-away certificate for Hostname at start-up.
	// For development and the demo only. TOML key "tls.self_signed".
	SelfSigned bool `toml:"self_signed"`
}

// Source reports which certificate source is configured, or "" when none.
func (t TLS) Source() TLSSource {
	switch {
	case t.CertFile != "" || t.KeyFile != "":
		return TLSFromFiles
	case len(t.ACMEDomains) > 0:
		return TLSFromACME
	case t.SelfSigned:
		return TLSSelfSigned
	}
	return ""
}

// Listener is one SMTP endpoint.
type Listener struct {
	// Name identifies the listener in logs and metrics. TOML key
	// "listener[i].name". Required, unique.
	Name string `toml:"name"`
	// Address is host:port to listen on, e.g. ":465" or "127.0.0.1:2525".
	// TOML key "listener[i].address". Required.
	Address string `toml:"address"`
	// TLS is "implicit", "starttls" or "none". TOML key "listener[i].tls".
	// Default "starttls".
	TLS TLSMode `toml:"tls"`
	// Role is "submission" or "mx". TOML key "listener[i].role". Required.
	Role Role `toml:"role"`
}

// Auth configures SMTP AUTH and sender permissions.
type Auth struct {
	// UsersFile holds "name:hash" lines (argon2id or bcrypt). TOML key
	// "auth.users_file". Default "/etc/smarthost/users".
	UsersFile string `toml:"users_file"`
	// MaxFailures failed logins from one client IP within FailureWindow ban
	// that IP for BanTime. TOML key "auth.max_failures". Default 3.
	MaxFailures int `toml:"max_failures"`
	// FailureWindow is how long a failure counts. TOML key
	// "auth.failure_window". Default "20m".
	FailureWindow Duration `toml:"failure_window"`
	// BanTime is how long a banned IP is refused. TOML key "auth.ban_time".
	// Default "24h".
	BanTime Duration `toml:"ban_time"`
	// Senders restricts, per user, the MAIL FROM and From: addresses the
	// user may use. Users not listed are not restricted. TOML table
	// [auth.senders], e.g. alice = ["*@example.com"].
	Senders map[string][]AddressPattern `toml:"senders"`
}

// DKIM configures signing.
type DKIM struct {
	// Canonicalization is "header/body", each "relaxed" or "simple". TOML
	// key "dkim.canonicalization". Default "relaxed/simple".
	Canonicalization string `toml:"canonicalization"`
	// Keys are tried in order; see [DKIMKey.Sign]. TOML array of tables
	// [[dkim.key]].
	Keys []DKIMKey `toml:"key"`
}

// DKIMKey is one signing key and the From addresses it signs for; together
// the keys play the part of OpenDKIM's KeyTable and SigningTable.
type DKIMKey struct {
	// Domain is the d= tag. TOML key "dkim.key[i].domain". Required.
	Domain string `toml:"domain"`
	// Selector is the s= tag. TOML key "dkim.key[i].selector". Required.
	Selector string `toml:"selector"`
	// PrivateKey is a PEM file (PKCS#1/PKCS#8 RSA ≥ 2048 bits, or
	// Ed25519). TOML key "dkim.key[i].private_key". Required.
	PrivateKey string `toml:"private_key"`
	// Sign lists From: address patterns this key signs, e.g.
	// ["*@example.com", "*@*.example.com"]. TOML key "dkim.key[i].sign".
	// Default: "*@<domain>".
	Sign []AddressPattern `toml:"sign"`
}

// Delivery configures the outbound SMTP client.
type Delivery struct {
	// Relayhost, when set, receives all mail the transport map does not
	// route, like Postfix's relayhost. TOML key "delivery.relayhost", e.g.
	// "smtps:[smtp.provider.example]:465". Default: none (MX lookup).
	Relayhost NextHop `toml:"relayhost"`
	// TLS is the default outbound TLS policy: "may" (opportunistic),
	// "encrypt" or "verify". TOML key "delivery.tls". Default "may".
	TLS DeliveryTLS `toml:"tls"`
	// TLSPolicy overrides TLS per destination (recipient domain or next-hop
	// host), like Postfix's smtp_tls_policy_maps. TOML table
	// [delivery.tls_policy], e.g. "example.net" = "verify".
	TLSPolicy map[string]DeliveryTLS `toml:"tls_policy"`
	// Retry is the wait before each retry of deferred mail; the last step
	// repeats. TOML key "delivery.retry". Default
	// ["1m", "5m", "15m", "30m", "1h", "2h", "4h"].
	Retry []Duration `toml:"retry"`
	// MaxLifetime is how long mail may stay queued before it bounces, like
	// Postfix's maximal_queue_lifetime. TOML key "delivery.max_lifetime".
	// Default "5d".
	MaxLifetime Duration `toml:"max_lifetime"`
	// ConnectTimeout bounds one TCP connect. TOML key
	// "delivery.connect_timeout". Default "30s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// CommandTimeout bounds the wait for each reply. TOML key
	// "delivery.command_timeout". Default "5m" (RFC 5321 §4.5.3.2).
	CommandTimeout Duration `toml:"command_timeout"`
	// Concurrency is how many deliveries run at once in total. TOML key
	// "delivery.concurrency". Default 50.
	Concurrency int `toml:"concurrency"`
	// DestinationConcurrency is how many connections one next hop gets at
	// once, like Postfix's default_destination_concurrency_limit. TOML key
	// "delivery.destination_concurrency". Default 20, as Postfix's.
	DestinationConcurrency int `toml:"destination_concurrency"`
}

// DNS selects the resolver used for MX, SPF, DKIM and DMARC lookups.
type DNS struct {
	// Server is "" for the system resolver, or host:port of one DNS server
	// to ask instead (a local validating resolver, or dnsmasq in tests).
	// TOML key "dns.server". Default "".
	Server string `toml:"server"`
	// Timeout bounds one lookup. TOML key "dns.timeout". Default "10s".
	Timeout Duration `toml:"timeout"`
}

// Limits bounds what one client may send and how long it may take.
type Limits struct {
	// MaxMessageSize is the largest message accepted, enforced while it is
	// read. TOML key "limits.max_message_size". Default "50MiB".
	MaxMessageSize Size `toml:"max_message_size"`
	// MaxRecipients per transaction. TOML key "limits.max_recipients".
	// Default 100.
	MaxRecipients int `toml:"max_recipients"`
	// MaxLineLength bounds one line of message content (and, because the
	// SMTP library reads both through one reader, one command line). Real
	// mail has lines longer than RFC 5322's 998 octets, so the default is
	// generous. TOML key "limits.max_line_length". Default "64KiB".
	MaxLineLength Size `toml:"max_line_length"`
	// MaxHeaderSize bounds the message header section. TOML key
	// "limits.max_header_size". Default "1MiB".
	MaxHeaderSize Size `toml:"max_header_size"`
	// Timeout is the longest wait for each command or chunk of data from a
	// client, like Postfix's smtpd_timeout. TOML key "limits.timeout".
	// Default "5m".
	Timeout Duration `toml:"timeout"`
	// MaxConnections is the number of concurrent sessions per listener.
	// TOML key "limits.max_connections". Default 200.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP is the number of concurrent sessions one client
	// IP may hold on a listener, like Postfix's
	// smtpd_client_connection_count_limit. TOML key
	// "limits.max_connections_per_ip". Default 20.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
}

// Inbound configures what mx listeners check before forwarding mail to the
// home server: the classic policyd-spf + OpenDKIM (verify) + OpenDMARC
// trio, a DNS blocklist and greylisting.
type Inbound struct {
	// SPF checks the MAIL FROM domain (the HELO name for the null sender)
	// and adds Received-SPF. "enforce" refuses only a fail of a record
	// ending in -all. TOML key "inbound.spf". Default "tag".
	SPF CheckMode `toml:"spf"`
	// DKIM verifies every signature for Authentication-Results. DKIM alone
	// never rejects (RFC 6376 §6.3: a failed signature is treated like no
	// signature), so "enforce" acts as "tag". TOML key "inbound.dkim".
	// Default "tag".
	DKIM CheckMode `toml:"dkim"`
	// DMARC evaluates the From domain's policy with SPF and DKIM
	// alignment. "enforce" refuses a fail under p=reject and marks a fail
	// under p=quarantine with QuarantineHeader. TOML key "inbound.dmarc".
	// Default "tag".
	DMARC CheckMode `toml:"dmarc"`
	// QuarantineHeader is the header field added to mail that fails DMARC
	// under p=quarantine, for the home server to file as spam. TOML key
	// "inbound.quarantine_header". Default "X-Spam-Flag: YES".
	QuarantineHeader string `toml:"quarantine_header"`
	// DNSBL lists DNS blocklist zones checked for the client IP; a listed
	// client is refused with 554 5.7.1 naming the list. TOML key
	// "inbound.dnsbl", e.g. ["zen.spamhaus.org"]. Default: none.
	DNSBL []string `toml:"dnsbl"`
	// Greylisting makes an unknown (client /24, sender, recipient) triplet
	// retry after GreylistDelay, as postgrey does. Trusted networks and
	// authenticated clients are never greylisted. TOML key
	// "inbound.greylisting". Default false.
	Greylisting bool `toml:"greylisting"`
	// GreylistDelay is how long an unknown triplet must wait before its
	// retry is accepted. TOML key "inbound.greylist_delay". Default "5m".
	GreylistDelay Duration `toml:"greylist_delay"`
	// GreylistRetention is how long a triplet that passed is remembered.
	// TOML key "inbound.greylist_retention". Default "35d".
	GreylistRetention Duration `toml:"greylist_retention"`
}

// CheckMode says what an inbound check does.
type CheckMode string

const (
	// CheckOff skips the check.
	CheckOff CheckMode = "off"
	// CheckTag records the result in a header and never refuses.
	CheckTag CheckMode = "tag"
	// CheckEnforce also refuses what the sender's domain asks to refuse.
	CheckEnforce CheckMode = "enforce"
)

// Valid reports whether m is a known mode.
func (m CheckMode) Valid() bool { return m == CheckOff || m == CheckTag || m == CheckEnforce }

// Metrics configures the Prometheus text endpoint.
type Metrics struct {
	// Address is host:port for GET /metrics; "" turns it off. Keep it on
	// loopback or a private network: it tells how much mail flows. TOML
	// key "metrics.address", e.g. "127.0.0.1:9325". Default "".
	Address string `toml:"address"`
}
