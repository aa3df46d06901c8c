package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"fmt"
	"io"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// benchMessage is a message with a typical header and a body of size bytes
// in 78-character lines.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(lines(
		"From: Alice Example <alice@example.test>",
		"To: Bob <bob@example.invalid>, carol@example.invalid",
		"Subject: quarterly report",
		"Date: Mon, 21 Sep 2026 10:00:00 +0000",
		"Message-ID: <bench@example.test>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
	))
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2)[:76] + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

var benchAlgorithms = []struct {
	name  string
	files []string
}{
	{"RSA2048", []string{rsaKeyFile}},
	{"Ed25519", []string{edKeyFile}},
	{"RSA2048+Ed25519", []string{rsaKeyFile, edKeyFile}},
}

var benchSizes = []int{1 << 10, 100 << 10}

// BenchmarkSign is one message through the session's path: read the header
// section, parse From, choose keys, stream the body through the Signer in
// io.Copy's 32 KiB chunks, Finish. Compare with BenchmarkGoMsgauthSign.
func BenchmarkSign(b *testing.B) {
	for _, algo := range benchAlgorithms {
		var keys []keySpec
		for i, f := range algo.files {
			keys = append(keys, keySpec{selector: fmt.Sprint("s", i), file: f})
		}
		tab := newTable(b, "relaxed/simple", keys...)
		for _, size := range benchSizes {
			msg := benchMessage(size)
			b.Run(fmt.Sprintf("%s/%dKiB", algo.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					br := bufio.NewReader(bytes.NewReader(msg))
					header, err := ReadHeader(br, maxHeaderSize)
					if err != nil {
						b.Fatal(err)
					}
					from, err := ParseFrom(header)
					if err != nil {
						b.Fatal(err)
					}
					s, err := tab.Signer(header, from)
					if err != nil || s == nil {
						b.Fatalf("Signer: %v, %v", s, err)
					}
					if _, err := io.Copy(s, br); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Finish(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGoMsgauthSign is go-msgauth's dkim.Sign of the same messages with
// the same keys, canonicalization and h= list: the yardstick for
// BenchmarkSign. With two keys it signs twice, as go-msgauth needs.
func BenchmarkGoMsgauthSign(b *testing.B) {
	for _, algo := range benchAlgorithms {
		var signers []crypto.Signer
		for _, f := range algo.files {
			k, err := ReadPrivateKey(f)
			if err != nil {
				b.Fatal(err)
			}
			signers = append(signers, k)
		}
		tab := newTable(b, "relaxed/simple", keySpec{selector: "s", file: algo.files[0]})
		for _, size := range benchSizes {
			msg := benchMessage(size)
			s, err := tab.Signer(msg[:bytes.Index(msg, []byte("\r\n\r\n"))+4], "alice@example.test")
			if err != nil {
				b.Fatal(err)
			}
			headerKeys := s.names // our h= list, oversigning included
			b.Run(fmt.Sprintf("%s/%dKiB", algo.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					for i, k := range signers {
						err := msgauth.Sign(io.Discard, bytes.NewReader(msg), &msgauth.SignOptions{
							Domain: testDomain, Selector: fmt.Sprint("s", i), Signer: k,
							HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
							BodyCanonicalization:   msgauth.CanonicalizationSimple,
							HeaderKeys:             headerKeys,
						})
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
