package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hush-sh/hush/agent/config"
	"github.com/urfave/cli/v2"
)

// The agent refuses client settings that cannot work before it starts
// anything.
func TestAgentClientFlagsRefused(t *testing.T) {
	tests := map[string]struct {
		args []string
		want []string
	}{
		"client in dev mode": {
			args: []string{"-dev", "-client", "-servers", "127.0.0.1:4747"},
			want: []string{"Client in dev mode; a dev agent is a cluster of its own"},
		},
		"servers without -client": {
			args: []string{"-servers", "127.0.0.1:4747"},
			want: []string{"Client not enabled; servers are given but the agent is not a client of them: set enabled = true in the client block, or pass -client."},
		},
		"client without servers or TLS": {
			args: []string{"-client"},
			want: []string{"Missing servers; ", "Missing TLS; "},
		},
		"bad server address": {
			args: []string{"-client", "-servers", "127.0.0.1:4747,nowhere"},
			want: []string{`Invalid server address; "nowhere" is not HOST:PORT`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"hush", "agent", "-data-dir", t.TempDir()}, tc.args...)
			code := Run(context.Background(), "test", args, strings.NewReader(""), &out, &errb)
			if code != exitError {
				t.Errorf("got exit %d, want %d (stderr %q)", code, exitError, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q lacks %q", errb.String(), w)
				}
			}
		})
	}
}

// -client sets client { enabled } either way, and -servers adds to the
// file's servers.
func TestAgentClientFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "client.hcl")
	if err := os.WriteFile(file, []byte("client {\n  servers = [\"10.0.0.1:4747\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args        []string
		wantEnabled *bool
		wantServers []string
	}{
		"no flags":      {args: nil, wantServers: []string{"10.0.0.1:4747"}},
		"-client":       {args: []string{"-client"}, wantEnabled: ptr(true), wantServers: []string{"10.0.0.1:4747"}},
		"-client=false": {args: []string{"-client=false"}, wantEnabled: ptr(false), wantServers: []string{"10.0.0.1:4747"}},
		"-servers adds": {
			args:        []string{"-servers", "10.0.0.2:4747,10.0.0.3:4747", "-servers", "10.0.0.4:4747"},
			wantServers: []string{"10.0.0.1:4747", "10.0.0.2:4747", "10.0.0.3:4747", "10.0.0.4:4747"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got *config.Config
			app := &cli.App{
				Flags: agentCommand("test", nil).Flags,
				Action: func(c *cli.Context) error {
					cfg, diags := config.LoadFiles(file)
					if diags.HasErrors() {
						t.Fatal(config.FormatDiagnostics(diags))
					}
					clientFlags(c, cfg)
					got = cfg
					return nil
				},
			}
			if err := app.Run(append([]string{"hush"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			if e := got.Client.Enabled; (e == nil) != (tc.wantEnabled == nil) || e != nil && *e != *tc.wantEnabled {
				t.Errorf("got enabled %v, want %v", deref(e), deref(tc.wantEnabled))
			}
			if !slices.Equal(got.Client.Servers, tc.wantServers) {
				t.Errorf("got servers %q, want %q", got.Client.Servers, tc.wantServers)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(b *bool) string {
	if b == nil {
		return "unset"
	}
	if *b {
		return "true"
	}
	return "false"
}
