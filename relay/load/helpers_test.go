package load

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"smarthost/relay/sink"
)

// startSink serves relay/sink (the recording server the delivery tests
// use) on loopback for the test's lifetime.
func startSink(t *testing.T, opts sink.Options) (*sink.Sink, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := sink.New(opts)
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return s, l.Addr().String()
}

// startLoadSink serves this package's Sink on loopback.
func startLoadSink(t *testing.T, opts SinkOptions) (*Sink, string) {
	t.Helper()
	s, err := NewSink(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil after Close", err)
		}
	})
	return s, l.Addr().String()
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serverTLS is a throw-away certificate for the test servers (the
// generator does not verify it).
func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sink.example"},
		DNSNames:     []string{"sink.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// scriptedServer accepts one connection at a time and answers each line
// with answer(line); "" sends nothing. It records every line it read.
type scriptedServer struct {
	addr  string
	lines chan string
}

func startScripted(t *testing.T, answer func(line string) string) *scriptedServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &scriptedServer{addr: l.Addr().String(), lines: make(chan string, 1000)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				r := bufio.NewReader(c)
				c.Write([]byte("220 scripted.example ESMTP\r\n"))
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					if inData {
						if line == "." {
							inData = false
							c.Write([]byte("250 2.0.0 queued\r\n"))
						}
						continue
					}
					s.lines <- line
					if strings.EqualFold(line, "DATA") {
						inData = true
					}
					if a := answer(line); a != "" {
						c.Write([]byte(a + "\r\n"))
					}
					if strings.EqualFold(line, "QUIT") {
						return
					}
				}
			}()
		}
	}()
	return s
}
