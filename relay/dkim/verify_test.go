package dkim

import (
	"bytes"
	"fmt"
	"testing"
)

func TestVerify_PassesOwnSignaturesAndFailsTampering(t *testing.T) {
	t.Parallel()
	tab := newTable(t, "relaxed/simple", rsaAndEd()...)
	msg := []byte("From: alice@" + testDomain + "\r\nSubject: hi\r\n\r\nbody\r\n")
	signed, _ := signMessage(t, tab, msg, 7)
	recs := records(tab)
	lookup := func(name string) ([]string, error) {
		if r, ok := recs[name]; ok {
			return []string{r}, nil
		}
		return nil, fmt.Errorf("no record for %s", name)
	}
	vs, err := Verify(bytes.NewReader(signed), lookup)
	if err != nil || len(vs) != 2 {
		t.Fatalf("Verify = %v, %v; want 2 results", vs, err)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != testDomain {
			t.Errorf("Verify result %+v, want a pass for %s", v, testDomain)
		}
	}
	tampered := bytes.Replace(signed, []byte("body"), []byte("BODY"), 1)
	vs, err = Verify(bytes.NewReader(tampered), lookup)
	if err != nil || len(vs) != 2 || vs[0].Err == nil || vs[1].Err == nil {
		t.Errorf("Verify(tampered) = %+v, %v; want two failures", vs, err)
	}
}
