package postfix

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// service is one entry of master.cf (master(5)): "service type private
// unpriv chroot wakeup maxproc command args...".
type service struct {
	name    string // "smtp", "127.0.0.1:submission", "10025"
	typ     string // "inet", "unix", "pass", ...
	command string // "smtpd", "postscreen", "smtp", ...
	// overrides are the -o name=value arguments, which replace main.cf's
	// values for this service.
	overrides map[string]string
	text      string // the first eight fields, for comments
	line      int
}

// parseMasterCF parses master.cf text. Lines with fewer than eight fields
// are returned as problems.
func parseMasterCF(path, src string) ([]service, []string) {
	var out []service
	var bad []string
	for _, l := range logicalLines(src) {
		f := masterFields(l.text)
		if len(f) < 8 {
			bad = append(bad, fmt.Sprintf("%s:%d: %q has fewer than 8 fields", baseName(path), l.line, l.text))
			continue
		}
		s := service{name: f[0], typ: f[1], command: f[7], overrides: map[string]string{}, text: strings.Join(f[:8], " "), line: l.line}
		args := f[8:]
		for i := 0; i < len(args); i++ {
			var kv string
			switch {
			case args[i] == "-o" && i+1 < len(args):
				kv = args[i+1]
				i++
			case strings.HasPrefix(args[i], "-o") && len(args[i]) > 2:
				kv = args[i][2:]
			default:
				continue
			}
			kv = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(kv, "{"), "}"))
			if name, v, ok := strings.Cut(kv, "="); ok {
				s.overrides[strings.TrimSpace(name)] = strings.TrimSpace(v)
			}
		}
		out = append(out, s)
	}
	return out, bad
}

// masterFields splits a master.cf line at white space, keeping a {...}
// group (Postfix 3.0: -o { name = value with spaces }) as one field.
func masterFields(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{':
			depth++
		case c == '}' && depth > 0:
			depth--
		case depth == 0 && (c == ' ' || c == '\t'):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteByte(c)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// setting is a parameter as one service sees it: its -o override, or
// main.cf's value.
func (m *mainCF) setting(s service, name string) value {
	if v, ok := s.overrides[name]; ok {
		return m.expandText(v)
	}
	return m.get(name)
}

// servicePorts are the service names of /etc/services that SMTP listeners
// use; "smtps" is the old name of submissions.
var servicePorts = map[string]int{"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}

// listenAddr is where an inet service listens; host "" is every address.
type listenAddr struct {
	host string
	port int
}

// listenAddress splits an inet service name ("smtp", "127.0.0.1:smtp",
// "[::1]:587", "10025") into host and port. ok is false for a service name
// it does not know.
func listenAddress(name string) (a listenAddr, ok bool) {
	svc := name
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		a.host, svc = name[:i], name[i+1:]
		a.host = strings.TrimSuffix(strings.TrimPrefix(a.host, "["), "]")
	}
	if p, err := strconv.Atoi(svc); err == nil && p > 0 && p < 65536 {
		a.port = p
		return a, true
	}
	a.port, ok = servicePorts[svc]
	return a, ok
}

// joinHostPort is net.JoinHostPort with a bare ":port" for no host.
func joinHostPort(host string, port int) string {
	if host == "" {
		return ":" + strconv.Itoa(port)
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// transportService finds the master.cf service that a transport name in a
// next hop ("relay" in relay:[host]) runs: a unix service of that name.
func transportService(services []service, name string) (service, bool) {
	for _, s := range services {
		if s.name == name && s.typ == "unix" {
			return s, true
		}
	}
	return service{}, false
}
