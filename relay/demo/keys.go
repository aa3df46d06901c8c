package demo

import (
	"fmt"
	"strings"

	"smarthost/config"
	"smarthost/relay/certs"
	"smarthost/relay/dkim"

	"crypto/tls"
)

// demoKey is one generated DKIM key and its DNS record.
type demoKey struct {
	name, selector, file, kind string
	record                     string
}

type demoKeys []demoKey

// makeKeys generates an RSA-2048 and an Ed25519 key for the sender domain,
// as `smarthost dkim keygen` does, so the message carries both signatures
// side by side.
func makeKeys(dir string) (demoKeys, error) {
	var keys demoKeys
	for _, k := range []struct {
		selector string
		kind     dkim.Kind
	}{{"rsa", dkim.KindRSA2048}, {"ed", dkim.KindEd25519}} {
		files, err := dkim.Keygen(dkim.KeygenOptions{Dir: dir, Domain: senderDom, Selector: k.selector, Kind: k.kind})
		if err != nil {
			return nil, err
		}
		keys = append(keys, demoKey{
			name:     dkim.RecordName(senderDom, k.selector),
			selector: k.selector,
			file:     files.PrivateKey,
			kind:     string(k.kind),
			record:   files.Record.String(),
		})
	}
	return keys, nil
}

// lookup answers TXT queries for the keys' records, as the sender domain's
// DNS would once the records are published.
func (ks demoKeys) lookup(name string) ([]string, error) {
	for _, k := range ks {
		if strings.EqualFold(strings.TrimSuffix(name, "."), k.name) {
			return []string{k.record}, nil
		}
	}
	return nil, fmt.Errorf("demo: no TXT record for %s", name)
}

// sinkCertificate is a self-signed certificate for the stand-in servers.
func sinkCertificate() (tls.Certificate, error) {
	src, err := certs.New(certs.Options{TLS: config.TLS{SelfSigned: true}, Hostname: "mx.recipient.example"})
	if err != nil {
		return tls.Certificate{}, err
	}
	c, err := src.Certificate(&tls.ClientHelloInfo{ServerName: "mx.recipient.example"})
	if err != nil {
		return tls.Certificate{}, err
	}
	return *c, nil
}
