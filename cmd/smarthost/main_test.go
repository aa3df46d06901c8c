package main

import (
	"flag"
	"reflect"
	"strings"
	"testing"

	"smarthost/relay/dkim"
)

func TestParseFlags_FlagsAnywhere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantPos  []string
		wantConf string
	}{
		{[]string{"add", "alice", "-config", "F"}, []string{"add", "alice"}, "F"},
		{[]string{"add", "-config", "F", "alice"}, []string{"add", "alice"}, "F"},
		{[]string{"-config=F", "add", "alice"}, []string{"add", "alice"}, "F"},
		{[]string{"add", "--", "-alice"}, []string{"add", "-alice"}, defaultConfigPath},
		{nil, nil, defaultConfigPath},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		conf := configFlag(fs)
		pos, err := parseFlags(fs, tt.args)
		if err != nil || !reflect.DeepEqual(pos, tt.wantPos) || *conf != tt.wantConf {
			t.Errorf("parseFlags(%q) = %q, config %q, %v; want %q, config %q", tt.args, pos, *conf, err, tt.wantPos, tt.wantConf)
		}
	}
}

// version names the build's RSA implementation, a build choice that sets
// how many messages a core can sign.
func TestVersion_NamesRSABackend(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd([]string{"version"}, "", false)
	want := "(DKIM RSA signing: " + dkim.RSABackend() + ")"
	if code != 0 || !strings.HasPrefix(out, "smarthost ") || !strings.Contains(out, want) {
		t.Fatalf("smarthost version = %d, %q (stderr %q); want 0 and a line with %q", code, out, errOut, want)
	}
}
