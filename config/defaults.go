package config

import (
	"net/netip"
	"os"
	"time"
)

// Defaults, as in DESIGN.md. Where Postfix has an equivalent, the value
// follows Postfix.
const (
	DefaultStateDir          = "/var/lib/smarthost"
	DefaultUsersFile         = "/etc/smarthost/users"
	DefaultMaxFailures       = 3
	DefaultFailureWindow     = 20 * time.Minute
	DefaultBanTime           = 24 * time.Hour
	DefaultCanonicalization  = "relaxed/simple"
	DefaultMaxLifetime       = 5 * 24 * time.Hour // Postfix maximal_queue_lifetime
	DefaultConnectTimeout    = 30 * time.Second   // Postfix smtp_connect_timeout
	DefaultCommandTimeout    = 5 * time.Minute    // RFC 5321 §4.5.3.2
	DefaultConcurrency       = 50                 // above DefaultDestConcurrency, so one slow destination cannot take every slot (Postfix: 100 smtp processes)
	DefaultDestConcurrency   = 20                 // Postfix default_destination_concurrency_limit
	DefaultDNSTimeout        = 10 * time.Second
	DefaultMaxMessageSize    = 50 << 20
	DefaultMaxRecipients     = 100 // RFC 5321 §4.5.3.1.8: at least 100 must be accepted
	DefaultMaxLineLength     = 64 << 10
	DefaultMaxHeaderSize     = 1 << 20
	DefaultTimeout           = 5 * time.Minute // Postfix smtpd_timeout
	DefaultMaxConnections    = 200
	DefaultMaxConnsPerIP     = 20
	DefaultACMEHTTPAddress   = ":80"
	DefaultQuarantineHeader  = "X-Spam-Flag: YES"
	DefaultGreylistDelay     = 5 * time.Minute     // postgrey --delay
	DefaultGreylistRetention = 35 * 24 * time.Hour // postgrey --max-age
	DefaultSubmissionAddress = ":465"
	DefaultMXAddress         = ":25"
)

// DefaultRetry is the default retry schedule; its last step repeats.
var DefaultRetry = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour,
}

// Default returns a configuration with every default filled in and no file
// behind it.
func Default() *Config {
	c := &Config{}
	c.applyDefaults(func(...string) bool { return false })
	return c
}

// applyDefaults fills every field the file did not set. isSet reports
// whether a TOML key was present, so that an explicit zero is kept where
// zero means something.
func (c *Config) applyDefaults(isSet func(key ...string) bool) {
	if c.Hostname == "" {
		if h, err := os.Hostname(); err == nil {
			c.Hostname = h
		}
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if !isSet("trusted_networks") {
		c.TrustedNetworks = []Network{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			{Prefix: netip.MustParsePrefix("::1/128")},
		}
	}
	if !isSet("listener") {
		c.Listeners = []Listener{
			{Name: "submissions", Address: DefaultSubmissionAddress, TLS: TLSImplicit, Role: RoleSubmission},
			{Name: "smtp", Address: DefaultMXAddress, TLS: TLSStartTLS, Role: RoleMX},
		}
	}
	for i := range c.Listeners {
		if c.Listeners[i].TLS == "" {
			c.Listeners[i].TLS = TLSStartTLS
		}
	}
	if c.TLS.ACMEHTTPAddress == "" {
		c.TLS.ACMEHTTPAddress = DefaultACMEHTTPAddress
	}
	if c.Auth.UsersFile == "" {
		c.Auth.UsersFile = DefaultUsersFile
	}
	if !isSet("auth", "max_failures") {
		c.Auth.MaxFailures = DefaultMaxFailures
	}
	setDuration(&c.Auth.FailureWindow, DefaultFailureWindow)
	setDuration(&c.Auth.BanTime, DefaultBanTime)
	if c.DKIM.Canonicalization == "" {
		c.DKIM.Canonicalization = DefaultCanonicalization
	}
	for i := range c.DKIM.Keys {
		k := &c.DKIM.Keys[i]
		if len(k.Sign) == 0 && ValidDomain(k.Domain) {
			k.Sign = []AddressPattern{{Local: "*", Domain: lower(k.Domain)}}
		}
	}
	if c.Delivery.TLS == "" {
		c.Delivery.TLS = DeliveryTLSMay
	}
	if !isSet("delivery", "retry") {
		for _, d := range DefaultRetry {
			c.Delivery.Retry = append(c.Delivery.Retry, Duration{Duration: d})
		}
	}
	setDuration(&c.Delivery.MaxLifetime, DefaultMaxLifetime)
	setDuration(&c.Delivery.ConnectTimeout, DefaultConnectTimeout)
	setDuration(&c.Delivery.CommandTimeout, DefaultCommandTimeout)
	if !isSet("delivery", "concurrency") {
		c.Delivery.Concurrency = DefaultConcurrency
	}
	if !isSet("delivery", "destination_concurrency") {
		c.Delivery.DestinationConcurrency = DefaultDestConcurrency
	}
	setDuration(&c.DNS.Timeout, DefaultDNSTimeout)
	setSize(&c.Limits.MaxMessageSize, DefaultMaxMessageSize)
	if !isSet("limits", "max_recipients") {
		c.Limits.MaxRecipients = DefaultMaxRecipients
	}
	setSize(&c.Limits.MaxLineLength, DefaultMaxLineLength)
	setSize(&c.Limits.MaxHeaderSize, DefaultMaxHeaderSize)
	setDuration(&c.Limits.Timeout, DefaultTimeout)
	if !isSet("limits", "max_connections") {
		c.Limits.MaxConnections = DefaultMaxConnections
	}
	if !isSet("limits", "max_connections_per_ip") {
		c.Limits.MaxConnectionsPerIP = DefaultMaxConnsPerIP
	}
	for _, m := range []*CheckMode{&c.Inbound.SPF, &c.Inbound.DKIM, &c.Inbound.DMARC} {
		if *m == "" {
			*m = CheckTag
		}
	}
	if !isSet("inbound", "quarantine_header") {
		c.Inbound.QuarantineHeader = DefaultQuarantineHeader
	}
	setDuration(&c.Inbound.GreylistDelay, DefaultGreylistDelay)
	setDuration(&c.Inbound.GreylistRetention, DefaultGreylistRetention)
}

// setDuration fills d when it is unset; an invalid value is left for
// validation to report.
func setDuration(d *Duration, def time.Duration) {
	if d.raw == "" {
		d.Duration = def
	}
}

func setSize(s *Size, def int64) {
	if s.raw == "" {
		s.Bytes = def
	}
}
