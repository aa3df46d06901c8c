package postfix

import "strings"

// harmless are main.cf parameters that need no translation: they only
// concern Postfix's own installation, logging, local delivery (covered by
// the note on mydestination), or TLS and SASL details smarthost fixes
// itself (TLS 1.2 or newer with AEAD ciphers; AUTH PLAIN and LOGIN over
// TLS only).
var harmless = map[string]bool{
	"biff": true, "append_dot_mydomain": true, "readme_directory": true, "html_directory": true,
	"manpage_directory": true, "sample_directory": true, "compatibility_level": true,
	"smtpd_banner": true, "mail_name": true, "inet_protocols": true, "myorigin": true, "mydomain": true,
	"alias_maps": true, "alias_database": true, "mailbox_size_limit": true, "mailbox_command": true,
	"home_mailbox": true, "recipient_delimiter": true, "queue_directory": true, "data_directory": true,
	"command_directory": true, "daemon_directory": true, "meta_directory": true, "shlib_directory": true,
	"config_directory": true, "mail_owner": true, "setgid_group": true, "sendmail_path": true,
	"newaliases_path": true, "mailq_path": true, "debug_peer_level": true, "debug_peer_list": true,
	"debugger_command": true, "syslog_name": true, "syslog_facility": true, "maillog_file": true,
	"smtputf8_enable": true, "disable_vrfy_command": true, "smtpd_helo_required": true,
	"smtpd_tls_auth_only": true, "smtpd_tls_received_header": true, "smtpd_tls_loglevel": true,
	"smtp_tls_loglevel": true, "smtp_tls_note_starttls_offer": true, "smtpd_tls_security_level": true,
	"smtp_tls_CApath": true, "smtp_tls_CAfile": true, "smtpd_tls_CApath": true, "smtpd_tls_CAfile": true,
	"smtp_tls_session_cache_database": true, "smtpd_tls_session_cache_database": true,
	"smtp_tls_session_cache_timeout": true, "smtpd_tls_session_cache_timeout": true,
	"tls_random_source": true, "smtpd_tls_dh1024_param_file": true, "smtpd_tls_eecdh_grade": true,
	"smtpd_use_tls": true, "smtp_use_tls": true,
}

// isHarmlessTLS reports TLS protocol and cipher settings, which smarthost
// fixes at TLS 1.2 or newer with AEAD ciphers.
func isHarmlessTLS(name string) bool {
	return strings.HasPrefix(name, "tls_") ||
		(strings.HasPrefix(name, "smtpd_tls_") || strings.HasPrefix(name, "smtp_tls_")) &&
			(strings.Contains(name, "protocols") || strings.Contains(name, "ciphers") || strings.Contains(name, "exclude"))
}

// leftovers lists the main.cf parameters that were neither translated nor
// known to be harmless, so nothing is dropped silently.
func (im *importer) leftovers() {
	b := &im.doc.leftover
	var names []string
	for _, n := range im.main.order {
		if !im.handled[n] && !im.main.used[n] && !harmless[n] && !isHarmlessTLS(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	b.note("main.cf also sets these, which the importer does not translate; review them:")
	for _, n := range names {
		im.untranslated(b, im.main.source(n))
	}
}
