package auth

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/emersion/go-sasl"
)

// recorder is an CheckFunc that records its calls and accepts
// alice/pw only.
type recorder struct{ calls [][2]string }

func (r *recorder) authenticate(user, password string) error {
	r.calls = append(r.calls, [2]string{user, password})
	if user == "alice" && password == "pw" {
		return nil
	}
	return ErrInvalidCredentials
}

// exchange is one client response and what the server should answer.
type exchange struct {
	response      []byte // nil: no (initial) response
	wantChallenge []byte // compared only when the step is not done
	wantDone      bool
	wantErr       error // errors.Is; nil means success
}

type saslCase struct {
	name      string
	steps     []exchange
	wantCalls [][2]string
}

func runSASL(t *testing.T, newServer func(CheckFunc) sasl.Server, tests []saslCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			s := newServer(rec.authenticate)
			for i, st := range tt.steps {
				challenge, done, err := s.Next(st.response)
				if done != st.wantDone || !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
					t.Fatalf("step %d: Next(%q) = done %v, err %v; want done %v, err %v", i, st.response, done, err, st.wantDone, st.wantErr)
				}
				if !done {
					if challenge == nil || !bytes.Equal(challenge, st.wantChallenge) {
						t.Errorf("step %d: challenge %q (nil=%v), want %q", i, challenge, challenge == nil, st.wantChallenge)
					}
				}
			}
			if !reflect.DeepEqual(rec.calls, tt.wantCalls) {
				t.Errorf("authenticate called with %q, want %q", rec.calls, tt.wantCalls)
			}
		})
	}
}

func TestPlainServer(t *testing.T) {
	t.Parallel()
	ok := []byte("\x00alice\x00pw")
	runSASL(t, NewPlainServer, []saslCase{
		{"initial response", []exchange{
			{response: ok, wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"authzid equal to authcid", []exchange{
			{response: []byte("alice\x00alice\x00pw"), wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"no initial response: empty challenge first", []exchange{
			{response: nil, wantChallenge: []byte{}},
			{response: ok, wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"empty initial response (AUTH PLAIN =) is taken as none", []exchange{
			{response: []byte{}, wantChallenge: []byte{}},
			{response: ok, wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"wrong password", []exchange{
			{response: []byte("\x00alice\x00nope"), wantDone: true, wantErr: ErrInvalidCredentials},
		}, [][2]string{{"alice", "nope"}}},
		{"password may contain anything but NUL", []exchange{
			{response: []byte("\x00bob\x00p\xffw d"), wantDone: true, wantErr: ErrInvalidCredentials},
		}, [][2]string{{"bob", "p\xffw d"}}},
		{"authzid differs: refused before the password is checked", []exchange{
			{response: []byte("admin\x00alice\x00pw"), wantDone: true, wantErr: ErrInvalidCredentials},
		}, nil},
		{"no NUL", []exchange{
			{response: []byte("alicepw"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"one NUL", []exchange{
			{response: []byte("alice\x00pw"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"three NULs", []exchange{
			{response: []byte("\x00alice\x00pw\x00"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"empty authcid", []exchange{
			{response: []byte("\x00\x00pw"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"empty password", []exchange{
			{response: []byte("\x00alice\x00"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"authcid not UTF-8", []exchange{
			{response: []byte("\x00al\xffice\x00pw"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"empty answer to the empty challenge", []exchange{
			{response: nil, wantChallenge: []byte{}},
			{response: []byte{}, wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"response after the end", []exchange{
			{response: ok, wantDone: true},
			{response: ok, wantDone: true, wantErr: ErrMalformed},
		}, [][2]string{{"alice", "pw"}}},
		// The client cancels with "*" after the challenge; go-smtp answers
		// 501 itself and drops the server, which must not have checked
		// anything.
		{"cancelled after the challenge", []exchange{
			{response: nil, wantChallenge: []byte{}},
		}, nil},
	})
}

func TestLoginServer(t *testing.T) {
	t.Parallel()
	runSASL(t, NewLoginServer, []saslCase{
		{"username and password asked for", []exchange{
			{response: nil, wantChallenge: []byte("Username:")},
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
			{response: []byte("pw"), wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"username as initial response", []exchange{
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
			{response: []byte("pw"), wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"empty initial response is taken as none", []exchange{
			{response: []byte{}, wantChallenge: []byte("Username:")},
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
			{response: []byte("pw"), wantDone: true},
		}, [][2]string{{"alice", "pw"}}},
		{"wrong password", []exchange{
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
			{response: []byte("nope"), wantDone: true, wantErr: ErrInvalidCredentials},
		}, [][2]string{{"alice", "nope"}}},
		{"empty username", []exchange{
			{response: nil, wantChallenge: []byte("Username:")},
			{response: []byte{}, wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"username not UTF-8", []exchange{
			{response: []byte("al\xffice"), wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"empty password", []exchange{
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
			{response: []byte{}, wantDone: true, wantErr: ErrMalformed},
		}, nil},
		{"response after the end", []exchange{
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
			{response: []byte("pw"), wantDone: true},
			{response: []byte("more"), wantDone: true, wantErr: ErrMalformed},
		}, [][2]string{{"alice", "pw"}}},
		{"cancelled at the password prompt", []exchange{
			{response: nil, wantChallenge: []byte("Username:")},
			{response: []byte("alice"), wantChallenge: []byte("Password:")},
		}, nil},
	})
}

// TestSASL_WorksWithGoSASLClients runs go-sasl's own clients, which swaks
// and most mail programs behave like, against our servers.
func TestSASL_WorksWithGoSASLClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		client sasl.Client
		server func(CheckFunc) sasl.Server
		want   error
	}{
		{"PLAIN", sasl.NewPlainClient("", "alice", "pw"), NewPlainServer, nil},
		{"PLAIN with authzid", sasl.NewPlainClient("alice", "alice", "pw"), NewPlainServer, nil},
		{"PLAIN wrong password", sasl.NewPlainClient("", "alice", "x"), NewPlainServer, ErrInvalidCredentials},
		{"LOGIN", sasl.NewLoginClient("alice", "pw"), NewLoginServer, nil},
		{"LOGIN wrong password", sasl.NewLoginClient("alice", "x"), NewLoginServer, ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			s := tt.server(rec.authenticate)
			_, response, err := tt.client.Start()
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				challenge, done, err := s.Next(response)
				if done {
					if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
						t.Errorf("exchange ended with %v, want %v", err, tt.want)
					}
					return
				}
				if err != nil {
					t.Fatalf("server error before the end: %v", err)
				}
				if response, err = tt.client.Next(challenge); err != nil {
					t.Fatalf("client rejected challenge %q: %v", challenge, err)
				}
			}
			t.Errorf("exchange did not end after 5 steps")
		})
	}
}
