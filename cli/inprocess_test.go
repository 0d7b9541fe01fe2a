package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/server"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/fleet"
)

// testAgent serves a real agent's API (its store and secret endpoints)
// in-process, and returns its address and a token of user alice.
func testAgent(t *testing.T, cluster string) (addr, token string) {
	t.Helper()
	st, err := store.Open(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, _, err = st.IssueToken("alice", false, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(st, nil, nil, nil, server.Info{Version: "test", Cluster: cluster, Node: "n"}, hclog.NewNullLogger()))
	t.Cleanup(srv.Close)
	return srv.URL, token
}

// hush runs the command line in-process with env as its whole environment.
func hush(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = RunEnv(context.Background(), "test", append([]string{"hush"}, args...), strings.NewReader(""), &out, &errw, lookup)
	return code, out.String(), errw.String()
}

// TestCommandsInProcess runs commands in-process against real agents,
// with an environment of the test's own: the process's HUSH_ADDR and
// HUSH_CONFIG point nowhere, so a command that read them would fail.
func TestCommandsInProcess(t *testing.T) {
	t.Setenv("HUSH_ADDR", "http://127.0.0.1:1")
	t.Setenv("HUSH_TOKEN", "not-this-one")
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "nowhere.yaml"))

	t.Run("one agent from HUSH_ADDR", func(t *testing.T) {
		addr, token := testAgent(t, "c")
		env := map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": token}
		code, out, errw := hush(t, env, "create", "secret", "env", "SECRET_STUFF=super-secret-name")
		if want := "✔  Created environment secret: secret-stuff\n✔  Synced to all clusters\n"; code != 0 || out != want || errw != "" {
			t.Fatalf("create: got exit %d, stdout %q, stderr %q; want 0, %q, nothing", code, out, errw, want)
		}
		code, out, errw = hush(t, env, "get", "secrets", "-o", "name")
		if code != 0 || out != "secret-stuff\n" || errw != "" {
			t.Errorf("get secrets: got exit %d, stdout %q, stderr %q; want 0, %q", code, out, errw, "secret-stuff\n")
		}
	})

	t.Run("clusters of a config file under HOME", func(t *testing.T) {
		home := t.TempDir()
		env := map[string]string{"HOME": home}
		var cfg strings.Builder
		cfg.WriteString("clusters:\n")
		for _, name := range []string{"a", "b"} {
			addr, token := testAgent(t, name)
			if err := os.WriteFile(filepath.Join(home, name+".token"), []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&cfg, "  - name: %s\n    address: %s\n    token_file: ~/%s.token\n", name, addr, name)
		}
		if err := os.MkdirAll(filepath.Join(home, ".hush"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".hush", "config.yaml"), []byte(cfg.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errw := hush(t, env, "create", "secret", "env", "K=v")
		if code != 0 || !strings.HasSuffix(out, "✔  Synced to all clusters\n") || errw != "" {
			t.Fatalf("create: got exit %d, stdout %q, stderr %q; want it synced to all clusters", code, out, errw)
		}
		code, out, errw = hush(t, env, "get", "secrets")
		if code != 0 || !strings.Contains(out, "2/2") || errw != "" {
			t.Errorf("get secrets: got exit %d, stdout %q, stderr %q; want k on 2/2 clusters", code, out, errw)
		}
		code, out, errw = hush(t, env, "sync", "secrets")
		if want := "✔  All 2 clusters are in sync\n"; code != 0 || out != want || errw != "" {
			t.Errorf("sync secrets: got exit %d, stdout %q, stderr %q; want 0, %q", code, out, errw, want)
		}
	})
}

// TestLoadFleetOnce checks that the commands of one Run share one fleet,
// loaded on first use from the UI's environment.
func TestLoadFleetOnce(t *testing.T) {
	ui := newUI(context.Background(), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{},
		fleet.Env(func(k string) (string, bool) {
			v, ok := map[string]string{"HUSH_ADDR": "http://127.0.0.1:9", "HUSH_TOKEN": "t"}[k]
			return v, ok
		}))
	f1, err := ui.loadFleet()
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := ui.loadFleet()
	if f1 != f2 || f1.Clusters[0].Address != "http://127.0.0.1:9" {
		t.Errorf("got fleets %p, %p at %s; want one fleet for http://127.0.0.1:9", f1, f2, f1.Clusters[0].Address)
	}
}
