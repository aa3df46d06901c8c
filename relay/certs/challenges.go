package certs

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// maxACMEJSON bounds the CA responses challengeFilter rewrites; an
// authorization object is a few hundred bytes.
const maxACMEJSON = 1 << 20

// challengeFilter is the ACME client's transport. It removes tls-alpn-01
// from the challenges of every authorization the CA returns.
//
// autocert always tries tls-alpn-01 first (RFC 8737), which needs the CA to
// reach this host on port 443 with ALPN acme-tls/1. An SMTP relay does not
// serve port 443, so that validation always fails: it costs one failed
// authorization per issuance and counts against the CA's failed-validation
// limits before autocert falls back to http-01. autocert has no option to
// skip it; without the challenge on offer it goes straight to http-01.
type challengeFilter struct {
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (f challengeFilter) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := f.next.RoundTrip(req)
	if err != nil || res.StatusCode/100 != 2 || !isJSON(res.Header.Get("Content-Type")) {
		return res, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxACMEJSON+1))
	if err != nil {
		res.Body.Close()
		return nil, err
	}
	if len(body) > maxACMEJSON {
		// Not an authorization; hand it on untouched.
		res.Body = readCloser{io.MultiReader(bytes.NewReader(body), res.Body), res.Body}
		return res, nil
	}
	res.Body.Close()
	body = dropTLSALPN(body)
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return res, nil
}

// dropTLSALPN returns an ACME authorization object (RFC 8555 §7.1.4)
// without its tls-alpn-01 challenges. Anything else, including JSON it
// cannot parse, is returned unchanged.
func dropTLSALPN(body []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	raw, ok := obj["challenges"]
	if !ok {
		return body
	}
	if _, ok := obj["combinations"]; ok {
		// Pre-RFC 8555 ACME refers to challenges by index; leave it alone.
		return body
	}
	var challenges []json.RawMessage
	if json.Unmarshal(raw, &challenges) != nil {
		return body
	}
	kept := make([]json.RawMessage, 0, len(challenges))
	for _, c := range challenges {
		var ch struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(c, &ch) == nil && ch.Type == "tls-alpn-01" {
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == len(challenges) {
		return body
	}
	k, err := json.Marshal(kept)
	if err != nil {
		return body
	}
	obj["challenges"] = k
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}

// isJSON reports whether a Content-Type is application/json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
