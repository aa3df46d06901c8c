package dnscheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"smarthost/relay/resolve"
)

// RFC 8461 limits.
const (
	// maxPolicySize bounds the policy body read. RFC 8461 §3.3 lets
	// senders limit it and names 64 KiB as a reasonable bound.
	maxPolicySize = 64 << 10
	// maxPolicyAge is the largest max_age, one year (RFC 8461 §3.2).
	maxPolicyAge = 31557600
	// defaultPolicyTimeout applies when PolicyClient gets no timeout.
	defaultPolicyTimeout = 30 * time.Second
)

// checkMTASTS checks the domain's MTA-STS record (RFC 8461 §3.1) and,
// when the Checker has an HTTP client, the policy it announces (§3.2,
// §3.3): that it is served, parses, and covers every MX.
func (r *run) checkMTASTS() {
	name := "_mta-sts." + r.domain
	txts, err := r.res.LookupTXT(r.ctx, name)
	if err != nil && !resolve.IsNotFound(err) {
		r.add(lookupFailed(CheckMTASTS, "TXT "+name, err))
		return
	}
	var recs []string
	for _, t := range txts {
		// §3.1: records not starting with v=STSv1; are discarded.
		if strings.HasPrefix(t, "v=STSv1;") || t == "v=STSv1" {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		r.add(Finding{Check: CheckMTASTS, Level: LevelInfo, ID: "mtasts-missing",
			Text: "no MTA-STS record at " + name + ": senders deliver to your MX with TLS if offered, and without it if an attacker strips it",
			Fix:  "optional: publish an MTA-STS policy (RFC 8461) once every MX has a certificate valid for its name"})
		return
	case 1:
	default:
		r.add(Finding{Check: CheckMTASTS, Level: LevelError, ID: "mtasts-multiple",
			Text: fmt.Sprintf("%d MTA-STS records at %s: senders ignore MTA-STS for %s (RFC 8461 §3.1)", len(recs), name, r.domain),
			Fix:  "keep exactly one"})
		return
	}
	if p := stsRecordProblem(recs[0]); p != "" {
		r.add(Finding{Check: CheckMTASTS, Level: LevelError, ID: "mtasts-syntax",
			Text: fmt.Sprintf("%s %q: %s, so senders ignore MTA-STS (RFC 8461 §3.1)", name, recs[0], p),
			Fix:  fmt.Sprintf("publish `%s. IN TXT \"v=STSv1; id=20260101T000000\"` (change id whenever the policy changes)", name)})
		return
	}
	r.add(Finding{Check: CheckMTASTS, Level: LevelOK, ID: "mtasts-record", Text: fmt.Sprintf("%s: %q", name, recs[0])})
	url := "https://mta-sts." + r.domain + policyPath
	if r.http == nil {
		r.add(Finding{Check: CheckMTASTS, Level: LevelInfo, ID: "mtasts-not-fetched",
			Text: "policy at " + url + " not fetched"})
		return
	}
	body, err := fetchPolicy(r.ctx, r.http, url)
	if err != nil {
		r.add(Finding{Check: CheckMTASTS, Level: LevelError, ID: "mtasts-policy-unavailable",
			Text: fmt.Sprintf("policy at %s: %v; senders that have no cached policy ignore MTA-STS", url, err),
			Fix:  fmt.Sprintf("serve the policy as text/plain over HTTPS with a certificate valid for mta-sts.%s, with no redirect", r.domain)})
		return
	}
	pol := parsePolicy(string(body))
	for _, p := range pol.problems {
		r.add(Finding{Check: CheckMTASTS, Level: LevelError, ID: "mtasts-policy-syntax",
			Text: fmt.Sprintf("policy at %s: %s, so senders ignore it (RFC 8461 §3.2)", url, p),
			Fix:  "correct the policy file"})
	}
	if len(pol.problems) > 0 {
		return
	}
	r.checkPolicy(pol, url)
}

// checkPolicy reports a policy's mode and whether it covers every MX.
func (r *run) checkPolicy(pol policy, url string) {
	r.add(Finding{Check: CheckMTASTS, Level: LevelOK, ID: "mtasts-policy",
		Text: fmt.Sprintf("policy at %s: mode %s, max_age %d, mx %s", url, pol.mode, pol.maxAge, strings.Join(pol.mx, " "))})
	switch pol.mode {
	case modeNone:
		r.add(Finding{Check: CheckMTASTS, Level: LevelInfo, ID: "mtasts-mode-none",
			Text: "mode none: the policy is being withdrawn; senders do not require TLS"})
		return
	case modeTesting:
		r.add(Finding{Check: CheckMTASTS, Level: LevelInfo, ID: "mtasts-mode-testing",
			Text: "mode testing: senders report TLS failures (TLS-RPT) but still deliver",
			Fix:  "move to mode enforce once TLS-RPT reports are clean"})
	}
	level := LevelError
	if pol.mode == modeTesting {
		level = LevelWarn
	}
	for _, host := range r.mxHosts {
		if !slices.ContainsFunc(pol.mx, func(p string) bool { return mxMatches(p, host) }) {
			r.add(Finding{Check: CheckMTASTS, Level: level, ID: "mtasts-mx-uncovered",
				Text: fmt.Sprintf("MX %s matches no mx line of the policy: senders enforcing it do not deliver there (RFC 8461 §4.1)", host),
				Fix:  fmt.Sprintf("add `mx: %s` to the policy and change the record's id", host)})
		}
	}
}

// policyPath is where a policy is served (RFC 8461 §3.3).
const policyPath = "/.well-known/mta-sts.txt"

// stsID is the id= value: 1 to 32 letters and digits (RFC 8461 §3.1).
var stsID = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)

// stsRecordProblem checks an MTA-STS TXT record (RFC 8461 §3.1):
// "v=STSv1; id=<1*32 alphanumerics>", extension fields allowed.
func stsRecordProblem(txt string) string {
	var id string
	for i, f := range strings.Split(txt, ";") {
		f = strings.Trim(f, " \t")
		if f == "" && i > 0 {
			continue
		}
		name, value, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return fmt.Sprintf("%q is not field=value", f)
		case name == "id":
			id = value
		}
	}
	if !stsID.MatchString(id) {
		return "id= must be 1 to 32 letters and digits"
	}
	return ""
}

// fetchPolicy gets the policy body, as senders do (RFC 8461 §3.3): a 200
// answer, text/plain, not redirected, of bounded size.
func fetchPolicy(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s (redirects are not followed, RFC 8461 §3.3)", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, fmt.Errorf("served as %q, not text/plain", resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxPolicySize {
		return nil, fmt.Errorf("larger than %d bytes", maxPolicySize)
	}
	return body, nil
}

// stsMode is a policy's mode (RFC 8461 §5): what a sender does when it
// cannot deliver to an MX with valid TLS.
type stsMode string

const (
	// modeEnforce: the sender does not deliver.
	modeEnforce stsMode = "enforce"
	// modeTesting: the sender delivers anyway and reports (TLS-RPT).
	modeTesting stsMode = "testing"
	// modeNone: the policy is being withdrawn.
	modeNone stsMode = "none"
)

// Valid reports whether m is one of the three modes.
func (m stsMode) Valid() bool { return m == modeEnforce || m == modeTesting || m == modeNone }

// policy is an MTA-STS policy (RFC 8461 §3.2).
type policy struct {
	mode     stsMode
	maxAge   int
	mx       []string
	problems []string
}

// parsePolicy parses a policy: "key: value" lines ending in CRLF (LF is
// accepted, as senders do), unknown keys ignored.
func parsePolicy(body string) policy {
	var p policy
	seen := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok {
			p.problems = append(p.problems, fmt.Sprintf("line %q is not key: value", line))
			continue
		}
		if seen[key] && key != "mx" {
			p.problems = append(p.problems, key+" is given twice")
		}
		seen[key] = true
		switch key {
		case "version":
			if value != "STSv1" {
				p.problems = append(p.problems, fmt.Sprintf("version %q is not STSv1", value))
			}
		case "mode":
			p.mode = stsMode(value)
			if !p.mode.Valid() {
				p.problems = append(p.problems, fmt.Sprintf("mode %q is not enforce, testing or none", value))
			}
		case "max_age":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > maxPolicyAge || len(value) > 10 {
				p.problems = append(p.problems, fmt.Sprintf("max_age %q is not a number of seconds up to %d", value, maxPolicyAge))
			}
			p.maxAge = n
		case "mx":
			p.mx = append(p.mx, strings.ToLower(strings.TrimSuffix(value, ".")))
		}
	}
	for _, k := range []string{"version", "mode", "max_age"} {
		if !seen[k] {
			p.problems = append(p.problems, "no "+k+" line")
		}
	}
	if len(p.mx) == 0 && p.mode != modeNone && seen["mode"] {
		p.problems = append(p.problems, "no mx line")
	}
	return p
}

// mxMatches reports whether an MX host matches a policy's mx pattern
// (RFC 8461 §4.1): the same name, or for "*.example.com" a name with
// exactly one more label.
func mxMatches(pattern, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, found := strings.Cut(host, ".")
		return found && label != "" && rest == suffix
	}
	return host == pattern
}

// PolicyClient returns the HTTP client to give [Checker] for MTA-STS
// policy fetches. It looks names up through r, so the [dns] section
// applies to the fetch as to every other query; it verifies the server's
// certificate as senders do, never follows a redirect (RFC 8461 §3.3) and
// gives up after timeout (30s when timeout is not positive). It makes
// real HTTPS connections: tests give the Checker a client of their own.
func PolicyClient(r resolve.Resolver, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = defaultPolicyTimeout
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialVia(r),
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			DisableKeepAlives:     true,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dialVia returns a dial function that resolves the host through r and
// tries its addresses in turn.
func dialVia(r resolve.Resolver) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %s", host, dnsReason(err))
		}
		var d net.Dialer
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}
