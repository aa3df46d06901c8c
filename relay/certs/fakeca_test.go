package certs

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeCA is just enough of an RFC 8555 ACME server for autocert to get a
// certificate with http-01, on loopback. It trusts every JWS (signatures
// are not checked) and validates http-01 by fetching the key authorization
// from challengeAddr with the domain in the Host header, as a real CA does
// on port 80. It offers tls-alpn-01 first, like Let's Encrypt, and fails
// that challenge, as a real CA would with no server on port 443.
type fakeCA struct {
	t   *testing.T
	ca  *testCA
	srv *httptest.Server

	mu              sync.Mutex
	challengeAddr   string // host:port the http-01 validation connects to
	nonce           int
	thumbprint      string // of the account key (RFC 7638)
	contact         []string
	termsAgreed     bool
	orders          []*fakeOrder
	alpnAttempts    int
	httpValidations int
}

type fakeOrder struct {
	domain string
	token  string
	authz  string // pending, valid, invalid, deactivated
	status string // pending, ready, valid, invalid
	chain  []byte // PEM, once issued
}

func newFakeCA(t *testing.T) *fakeCA {
	f := &fakeCA{t: t, ca: newTestCA(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dir", f.directory)
	mux.HandleFunc("/nonce", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /account", f.newAccount)
	mux.HandleFunc("POST /order", f.newOrder)
	mux.HandleFunc("POST /order/{i}", f.order)
	mux.HandleFunc("POST /authz/{i}", f.authz)
	mux.HandleFunc("POST /chal/{i}/{type}", f.challenge)
	mux.HandleFunc("POST /finalize/{i}", f.finalize)
	mux.HandleFunc("POST /cert/{i}", f.cert)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.nonce++
		n := f.nonce
		f.mu.Unlock()
		w.Header().Set("Replay-Nonce", "nonce"+strconv.Itoa(n))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCA) directoryURL() string { return f.srv.URL + "/dir" }

func (f *fakeCA) url(format string, args ...any) string {
	return f.srv.URL + fmt.Sprintf(format, args...)
}

func (f *fakeCA) setChallengeAddr(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.challengeAddr = addr
}

// stats returns what the CA saw, for assertions.
func (f *fakeCA) stats() (orders, alpnAttempts, httpValidations int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.orders), f.alpnAttempts, f.httpValidations
}

func (f *fakeCA) directory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, "", map[string]any{
		"newNonce":   f.url("/nonce"),
		"newAccount": f.url("/account"),
		"newOrder":   f.url("/order"),
		"revokeCert": f.url("/revoke"),
		"keyChange":  f.url("/key-change"),
		"meta":       map[string]any{"termsOfService": f.url("/terms")},
	})
}

// jws is a flattened JWS request body (RFC 8555 §6.2) with its parts
// decoded.
type jws struct {
	Protected struct {
		JWK map[string]string `json:"jwk"`
		KID string            `json:"kid"`
	}
	Payload []byte
}

func readJWS(r *http.Request) (jws, error) {
	var raw struct{ Protected, Payload string }
	var out jws
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&raw); err != nil {
		return out, err
	}
	prot, err := base64.RawURLEncoding.DecodeString(raw.Protected)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(prot, &out.Protected); err != nil {
		return out, err
	}
	out.Payload, err = base64.RawURLEncoding.DecodeString(raw.Payload)
	return out, err
}

func (f *fakeCA) newAccount(w http.ResponseWriter, r *http.Request) {
	req, err := readJWS(r)
	if err != nil || req.Protected.JWK == nil {
		problem(w, "malformed", fmt.Sprintf("newAccount needs a jwk: %v", err))
		return
	}
	var p struct {
		TermsOfServiceAgreed bool     `json:"termsOfServiceAgreed"`
		Contact              []string `json:"contact"`
	}
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		problem(w, "malformed", err.Error())
		return
	}
	k := req.Protected.JWK
	// RFC 7638 §3.2: the required members in lexicographic order.
	canonical := fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, k["crv"], k["kty"], k["x"], k["y"])
	sum := sha256.Sum256([]byte(canonical))
	f.mu.Lock()
	f.thumbprint = base64.RawURLEncoding.EncodeToString(sum[:])
	f.contact, f.termsAgreed = p.Contact, p.TermsOfServiceAgreed
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, f.url("/account/1"), map[string]any{"status": "valid", "contact": p.Contact})
}

func (f *fakeCA) newOrder(w http.ResponseWriter, r *http.Request) {
	req, err := readJWS(r)
	if err != nil {
		problem(w, "malformed", err.Error())
		return
	}
	var p struct {
		Identifiers []struct{ Type, Value string } `json:"identifiers"`
	}
	if err := json.Unmarshal(req.Payload, &p); err != nil || len(p.Identifiers) != 1 || p.Identifiers[0].Type != "dns" {
		problem(w, "malformed", fmt.Sprintf("want one dns identifier, got %s", req.Payload))
		return
	}
	token := make([]byte, 16)
	rand.Read(token)
	f.mu.Lock()
	o := &fakeOrder{domain: p.Identifiers[0].Value, token: base64.RawURLEncoding.EncodeToString(token), authz: "pending", status: "pending"}
	f.orders = append(f.orders, o)
	i := len(f.orders) - 1
	body := f.orderJSON(i, o)
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, f.url("/order/%d", i), body)
}

// lookup returns the order a /{kind}/{i} URL refers to.
func (f *fakeCA) lookup(w http.ResponseWriter, r *http.Request) (int, *fakeOrder, bool) {
	i, err := strconv.Atoi(r.PathValue("i"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || i < 0 || i >= len(f.orders) {
		problem(w, "malformed", "no such order")
		return 0, nil, false
	}
	return i, f.orders[i], true
}

func (f *fakeCA) order(w http.ResponseWriter, r *http.Request) {
	i, o, ok := f.lookup(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	body := f.orderJSON(i, o)
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, f.url("/order/%d", i), body)
}

func (f *fakeCA) authz(w http.ResponseWriter, r *http.Request) {
	i, o, ok := f.lookup(w, r)
	if !ok {
		return
	}
	req, err := readJWS(r)
	if err != nil {
		problem(w, "malformed", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var p struct{ Status string }
	if len(req.Payload) > 0 && json.Unmarshal(req.Payload, &p) == nil && p.Status == "deactivated" {
		o.authz = "deactivated"
	}
	writeJSON(w, http.StatusOK, "", map[string]any{
		"status":     o.authz,
		"identifier": map[string]string{"type": "dns", "value": o.domain},
		"challenges": []map[string]string{
			{"type": "tls-alpn-01", "url": f.url("/chal/%d/tls-alpn-01", i), "token": o.token, "status": "pending"},
			{"type": "http-01", "url": f.url("/chal/%d/http-01", i), "token": o.token, "status": "pending"},
		},
	})
}

// challenge validates at once, so the authorization is final by the time
// autocert polls it.
func (f *fakeCA) challenge(w http.ResponseWriter, r *http.Request) {
	i, o, ok := f.lookup(w, r)
	if !ok {
		return
	}
	typ := r.PathValue("type")
	valid := false
	switch typ {
	case "tls-alpn-01":
		f.mu.Lock()
		f.alpnAttempts++
		f.mu.Unlock()
	case "http-01":
		valid = f.validateHTTP01(o)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	status := "invalid"
	if valid {
		status = "valid"
		o.authz, o.status = "valid", "ready"
	} else {
		o.authz, o.status = "invalid", "invalid"
	}
	writeJSON(w, http.StatusOK, "", map[string]string{"type": typ, "url": f.url("/chal/%d/%s", i, typ), "token": o.token, "status": status})
}

// validateHTTP01 fetches the key authorization as a CA would (RFC 8555
// §8.3), but from challengeAddr instead of port 80 of the domain.
func (f *fakeCA) validateHTTP01(o *fakeOrder) bool {
	f.mu.Lock()
	url := "http://" + f.challengeAddr + "/.well-known/acme-challenge/" + o.token
	want := o.token + "." + f.thumbprint
	f.mu.Unlock()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		f.t.Errorf("fake CA: %v", err)
		return false
	}
	req.Host = o.domain
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Errorf("fake CA: http-01 fetch: %v", err)
		return false
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
	if res.StatusCode != http.StatusOK || string(body) != want {
		f.t.Errorf("fake CA: http-01 %s answered %d %q, want 200 %q", url, res.StatusCode, body, want)
		return false
	}
	f.mu.Lock()
	f.httpValidations++
	f.mu.Unlock()
	return true
}

func (f *fakeCA) finalize(w http.ResponseWriter, r *http.Request) {
	i, o, ok := f.lookup(w, r)
	if !ok {
		return
	}
	req, err := readJWS(r)
	if err != nil {
		problem(w, "malformed", err.Error())
		return
	}
	var p struct{ CSR string }
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		problem(w, "malformed", err.Error())
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(p.CSR)
	if err != nil {
		problem(w, "badCSR", err.Error())
		return
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil || csr.CheckSignature() != nil {
		problem(w, "badCSR", fmt.Sprintf("csr: %v", err))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.status != "ready" || !slices.Equal(csr.DNSNames, []string{o.domain}) {
		problem(w, "orderNotReady", fmt.Sprintf("order %s, csr names %q", o.status, csr.DNSNames))
		return
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.domain},
		DNSNames:     csr.DNSNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * days).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca.cert, csr.PublicKey, f.ca.key)
	if err != nil {
		problem(w, "serverInternal", err.Error())
		return
	}
	o.chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.cert.Raw})...)
	o.status = "valid"
	writeJSON(w, http.StatusOK, f.url("/order/%d", i), f.orderJSON(i, o))
}

func (f *fakeCA) cert(w http.ResponseWriter, r *http.Request) {
	_, o, ok := f.lookup(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	chain := o.chain
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Write(chain)
}

// orderJSON is an order object (RFC 8555 §7.1.3). f.mu must be held.
func (f *fakeCA) orderJSON(i int, o *fakeOrder) map[string]any {
	m := map[string]any{
		"status":         o.status,
		"identifiers":    []map[string]string{{"type": "dns", "value": o.domain}},
		"authorizations": []string{f.url("/authz/%d", i)},
		"finalize":       f.url("/finalize/%d", i),
	}
	if o.chain != nil {
		m["certificate"] = f.url("/cert/%d", i)
	}
	return m
}

func writeJSON(w http.ResponseWriter, code int, location string, v any) {
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// problem answers with an RFC 8555 §6.7 error document.
func problem(w http.ResponseWriter, typ, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"type": "urn:ietf:params:acme:error:" + typ, "detail": detail})
}
