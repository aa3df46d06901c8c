package postfix

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"smarthost/config"
)

// auth reports the SASL setup, whose users cannot be carried over.
func (im *importer) auth() {
	b := &im.doc.auth
	b.header = "[auth]"
	enabled := im.main.yes("smtpd_sasl_auth_enable")
	for _, s := range im.services {
		enabled = enabled || (s.typ == "inet" && strings.EqualFold(s.overrides["smtpd_sasl_auth_enable"], "yes"))
	}
	for _, n := range im.main.order {
		if strings.HasPrefix(n, "smtpd_sasl_") || n == "broken_sasl_auth_clients" {
			im.handled[n] = true
		}
	}
	if !enabled {
		return
	}
	im.untranslated(b, fmt.Sprintf("SASL users: Postfix asked %s (smtpd_sasl_path = %s) for passwords, which cannot be carried over; add each user with `smarthost user add NAME` (users_file, default /etc/smarthost/users)",
		im.main.get("smtpd_sasl_type").text, im.main.get("smtpd_sasl_path").text))
}

// senders translates smtpd_sender_login_maps, which names the owners
// (SASL logins) of each sender address, into [auth.senders], which names
// the sender patterns of each user: the map turned around.
func (im *importer) senders() {
	if !im.main.isSet("smtpd_sender_login_maps") {
		return
	}
	b := &im.doc.senders
	b.header = "[auth.senders]"
	comments := []string{im.imported("smtpd_sender_login_maps")}
	refs, unknown := im.main.list("smtpd_sender_login_maps")
	if len(unknown) > 0 {
		im.untranslated(b, unknownNote(im.main.source("smtpd_sender_login_maps"), unknown))
		return
	}
	if !im.loginMismatch {
		im.untranslated(b, im.main.source("smtpd_sender_login_maps")+": no restriction in main.cf or master.cf uses it (reject_sender_login_mismatch and the like), so Postfix did not enforce it")
		return
	}
	var users []string
	patterns := map[string][]string{}
	var notes []string
	for t := range im.tables("smtpd_sender_login_maps", refs, func(n string) { notes = append(notes, n) }) {
		comments = append(comments, "from "+t.source+" ("+t.ref.raw+"), turned around: sender address → logins becomes user → sender patterns")
		notes = append(notes, t.problems...)
		for _, e := range t.entries {
			p, err := senderPattern(e.key)
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s: %s: %v", t.where(e), e.key, err))
				continue
			}
			for _, login := range splitList(e.value) {
				if err := checkLogin(login); err != nil {
					notes = append(notes, fmt.Sprintf("%s: %s: %v", t.where(e), login, err))
					continue
				}
				if _, ok := patterns[login]; !ok {
					users = append(users, login)
				}
				patterns[login] = appendOnce(patterns[login], p)
			}
		}
	}
	for _, n := range notes {
		im.untranslated(b, n)
	}
	comments = append(comments, "Postfix refused a logged-in user any sender address it does not own; smarthost restricts only the users listed here, so list every user.")
	for i, u := range users {
		if i > 0 {
			comments = nil
		}
		b.set(key(u), quoteList(patterns[u]), comments...)
	}
}

// senderPattern translates a key of smtpd_sender_login_maps: an address,
// or "@domain" for every address of the domain.
func senderPattern(k string) (string, error) {
	if !strings.Contains(k, "@") {
		return "", fmt.Errorf("a bare local part matches only Postfix's local domains")
	}
	if strings.HasPrefix(k, "@") {
		k = "*" + k
	}
	p, err := config.ParseAddressPattern(k)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// maxLoginLen is auth.MaxUserNameLen; config's sub-packages do not import
// auth.
const maxLoginLen = 255

// checkLogin applies the rules of smarthost's users file to a login name
// (auth.ValidateUserName): no ':', white space or control characters, no
// leading '#'.
func checkLogin(s string) error {
	switch {
	case s == "" || len(s) > maxLoginLen || !utf8.ValidString(s):
		return fmt.Errorf("not a user name smarthost accepts")
	case strings.HasPrefix(s, "#"):
		return fmt.Errorf("a user name may not start with '#'")
	}
	for _, r := range s {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("a user name may not contain %q", r)
		}
	}
	return nil
}
