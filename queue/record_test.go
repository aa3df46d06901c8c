package queue

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleRecord() *record {
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	header := []byte("Received: x\r\n\xff binary-safe\r\n")
	return &record{
		Version: recordVersion, ID: "1LV5ZRD340HU4KX", From: "alice@example.com",
		Recipients: []Recipient{
			{Address: "bob@example.net", State: StateDeferred, Attempts: 2, Reply: "451 4.7.1 later", Status: "4.7.1", Updated: t0},
			{Address: "carol@example.net", State: StateDelivered, Attempts: 1, Reply: "250 ok", Status: "2.0.0", Updated: t0},
		},
		Origin:  Origin{Listener: "submissions", Role: "submission", ClientIP: "192.0.2.7", User: "alice"},
		Arrival: t0, NextAttempt: t0.Add(5 * time.Minute), Attempts: 2,
		Header: header, headerLen: int64(len(header)), DataSize: 1234,
		History: []Attempt{{Time: t0, Number: 1, Recipients: []string{"bob@example.net"}, Outcome: StateDeferred, MX: "192.0.2.25:25", Reply: "451 4.7.1 later"}},
	}
}

func TestRecord_RoundTrip(t *testing.T) {
	t.Parallel()
	want := sampleRecord()
	b, err := want.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatalf("decodeRecord(encode(r)) = %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeRecord(encode(r)) = %+v, want %+v", got, want)
	}
}

func TestDecodeRecord_RejectsBrokenRecords(t *testing.T) {
	t.Parallel()
	edit := func(f func(map[string]any)) []byte {
		b, _ := sampleRecord().encode()
		var m map[string]any
		json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", []byte(`{"version":1,"id":"AB`), "decode record"},
		{"future version", edit(func(m map[string]any) { m["version"] = 2 }), "unsupported version 2"},
		{"no version", edit(func(m map[string]any) { delete(m, "version") }), "unsupported version 0"},
		{"bad id", edit(func(m map[string]any) { m["id"] = "../x" }), "invalid queue ID"},
		{"no recipients", edit(func(m map[string]any) { m["recipients"] = []any{} }), "no recipients"},
		{"bad state", edit(func(m map[string]any) {
			m["recipients"] = []any{map[string]any{"address": "b@example.net", "state": "lost"}}
		}), "invalid state"},
		{"negative size", edit(func(m map[string]any) { m["data_size"] = -1 }), "negative"},
	}
	for _, tt := range tests {
		_, err := decodeRecord(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: decodeRecord = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestRecord_HistoryKeepsNewest(t *testing.T) {
	t.Parallel()
	r := sampleRecord()
	r.History = nil
	for i := 1; i <= maxHistory+5; i++ {
		r.addHistory(Attempt{Number: i})
	}
	if len(r.History) != maxHistory || r.History[0].Number != 6 || r.History[maxHistory-1].Number != maxHistory+5 {
		t.Errorf("history = %d entries from attempt %d, want %d ending at %d", len(r.History), r.History[0].Number, maxHistory, maxHistory+5)
	}
}

// FuzzDecodeRecord checks that any accepted record satisfies the
// scheduler's invariants and survives an encode/decode round trip
// unchanged, and that recovery's decodeColdRecord accepts the same records.
func FuzzDecodeRecord(f *testing.F) {
	b, _ := sampleRecord().encode()
	f.Add(b)
	f.Add([]byte(`{"version":1,"id":"A","recipients":[{"address":"x","state":"pending"}],"data_size":0}`))
	f.Add([]byte(`{"version":1,"id":"A","recipients":[{"address":"x","state":"failed","notified":true}],"history":[{"attempt":1}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeRecord(in)
		cold, cerr := decodeColdRecord(in)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("decodeRecord: %v; decodeColdRecord (recovery): %v", err, cerr)
		}
		if err != nil {
			return
		}
		if cold.headerLen != r.headerLen {
			t.Fatalf("decodeColdRecord counts %d header bytes, decodeRecord %d", cold.headerLen, r.headerLen)
		}
		if !r.ID.Valid() || len(r.Recipients) == 0 || r.DataSize < 0 || r.Attempts < 0 {
			t.Fatalf("decodeRecord accepted a record breaking an invariant: %+v", r)
		}
		for _, rc := range r.Recipients {
			if !rc.State.Valid() {
				t.Fatalf("decodeRecord accepted state %q", rc.State)
			}
		}
		once, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRecord(once)
		if err != nil {
			t.Fatalf("re-decoding an encoded record: %v", err)
		}
		twice, _ := r2.encode()
		if !bytes.Equal(once, twice) {
			t.Fatalf("encode/decode not stable:\n%s\n%s", once, twice)
		}
	})
}

// base64Length counts the bytes of a JSON base64 string as decoding it
// into []byte would, and refuses what that refuses.
func TestBase64Length(t *testing.T) {
	t.Parallel()
	for n := 0; n <= 20; n++ {
		b, _ := json.Marshal(bytes.Repeat([]byte{0xfb}, n))
		var got base64Length
		if err := json.Unmarshal(b, &got); err != nil || int(got) != n {
			t.Errorf("%d bytes, %s: base64Length = %d, %v", n, b, got, err)
		}
	}
	for _, in := range []string{
		`null`, `""`, `"QQ=="`, `"QUI="`, `"QUJD"`, `"QR=="`, `"QUJDRA=="`, `"QUJD\nRA=="`, `"\u0051Q=="`,
		`"Q"`, `"QQ"`, `"QQ="`, `"Q==="`, `"===="`, `"QQ==QQ=="`, `"Q=Q="`, `"QUJ-"`, `"QUJ_"`, `"QU D"`, `"é"`,
		`5`, `true`, `[]`, `{}`,
	} {
		var want []byte
		wantErr := json.Unmarshal([]byte(in), &want)
		var got base64Length
		err := json.Unmarshal([]byte(in), &got)
		if (err != nil) != (wantErr != nil) || err == nil && int(got) != len(want) {
			t.Errorf("%s: base64Length = %d, %v; []byte has %d bytes, %v", in, got, err, len(want), wantErr)
		}
	}
}

// Recovery decodes records cold; a record it accepts must be one that
// decodeRecord accepts too, or the message's header and history, read
// again at its attempt, would fail to decode at every attempt and its
// DSN, and the message would be retried for ever instead of set aside.
func TestDecodeColdRecord_AgreesWithDecodeRecord(t *testing.T) {
	t.Parallel()
	edit := func(f func(map[string]any)) []byte {
		b, _ := sampleRecord().encode()
		var m map[string]any
		json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	good, _ := sampleRecord().encode()
	tests := []struct {
		name string
		in   []byte
	}{
		{"good", good},
		{"no header", edit(func(m map[string]any) { delete(m, "header") })},
		{"null history", edit(func(m map[string]any) { m["history"] = nil })},
		{"bad header", edit(func(m map[string]any) { m["header"] = "not base64!" })},
		{"header a number", edit(func(m map[string]any) { m["header"] = 5 })},
		{"history an object", edit(func(m map[string]any) { m["history"] = map[string]any{} })},
		{"history a string", edit(func(m map[string]any) { m["history"] = "x" })},
		{"history entry a number", edit(func(m map[string]any) { m["history"] = []any{5} })},
		{"history bad time", edit(func(m map[string]any) { m["history"] = []any{map[string]any{"time": "yesterday"}} })},
		{"history attempt a string", edit(func(m map[string]any) { m["history"] = []any{map[string]any{"attempt": "1"}} })},
		{"history recipients a string", edit(func(m map[string]any) { m["history"] = []any{map[string]any{"recipients": "b"}} })},
		{"history reply a number", edit(func(m map[string]any) { m["history"] = []any{map[string]any{"reply": 451}} })},
		{"history null entry", edit(func(m map[string]any) { m["history"] = []any{nil} })},
	}
	for _, tt := range tests {
		warm, werr := decodeRecord(tt.in)
		cold, cerr := decodeColdRecord(tt.in)
		if (werr == nil) != (cerr == nil) {
			t.Errorf("%s: decodeRecord: %v; decodeColdRecord: %v", tt.name, werr, cerr)
			continue
		}
		if werr == nil && (cold.headerLen != warm.headerLen || !cold.cold || cold.Header != nil || cold.History != nil) {
			t.Errorf("%s: cold record has header length %d (cold %v, header %q, history %v), want %d and nothing in memory",
				tt.name, cold.headerLen, cold.cold, cold.Header, cold.History, warm.headerLen)
		}
	}
}
