package cli

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/server"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// tokenAgent serves a real agent's API in-process and returns its address,
// its store, and the secrets of a management token and of alice's token.
func tokenAgent(t *testing.T) (addr string, st *store.Store, root, alice string) {
	t.Helper()
	st, err := store.Open(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root, _, err = st.IssueToken("root", true, "root token")
	if err != nil {
		t.Fatal(err)
	}
	alice, _, err = st.IssueToken("alice", false, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(st, nil, nil, nil, server.Info{Version: "test", Cluster: "c", Node: "n"}, hclog.NewNullLogger()))
	t.Cleanup(srv.Close)
	return srv.URL, st, root, alice
}

func TestACLTokenCommands(t *testing.T) {
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "nowhere.yaml"))
	addr, st, root, alice := tokenAgent(t)
	as := func(token string) map[string]string { return map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": token} }

	code, out, errw := hush(t, as(root), "acl", "token", "create", "--user", "alice", "--ttl", "1h", "--description", "ci job")
	if code != 0 || !strings.Contains(out, "Created a token for user alice") || !strings.Contains(out, "Expires:") || errw != "" {
		t.Fatalf("create: got exit %d, stdout %q, stderr %q; want a token for alice with an expiry", code, out, errw)
	}
	code, ciSecret, errw := hush(t, as(root), "acl", "token", "create", "--user", "alice", "-q", "--ttl=24h")
	ciSecret = strings.TrimSpace(ciSecret)
	if code != 0 || !strings.HasPrefix(ciSecret, store.TokenPrefix) || errw != "" {
		t.Fatalf("create -q: got exit %d, stdout %q, stderr %q; want the token alone", code, ciSecret, errw)
	}
	if _, _, err := st.IssueToken("bob", false, "bob's"); err != nil {
		t.Fatal(err)
	}

	code, out, errw = hush(t, as(alice), "acl", "token", "list", "-o", "json")
	var listed []*api.Token
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || errw != "" {
		t.Fatalf("list -o json: got exit %d, stdout %q (%v), stderr %q", code, out, err, errw)
	}
	if len(listed) != 3 {
		t.Errorf("alice lists %d tokens, want her 3", len(listed))
	}
	var ciAccessor string
	for _, tok := range listed {
		if tok.User != "alice" || tok.Secret != "" {
			t.Errorf("alice lists %+v, want only her tokens, without secrets", tok)
		}
		if tok.Description == "" && tok.ExpiresAt != nil {
			ciAccessor = tok.Accessor // the one created with -q
		}
	}
	for _, secret := range []string{root, alice, ciSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("the listing holds a token's secret")
		}
	}

	code, out, _ = hush(t, as(root), "acl", "token", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 6 || strings.Join(strings.Fields(lines[0]), " ") != "ACCESSOR USER DESCRIPTION CREATED EXPIRES LAST USED" {
		t.Fatalf("list as root: got exit %d, %q; want a header and 5 tokens", code, out)
	}
	for _, want := range []string{"root (management)", "ci job", "bob's", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("list as root: %q lacks %q", out, want)
		}
	}
	if code, out, _ := hush(t, as(root), "acl", "token", "list", "-o", "yaml"); code != 0 || strings.Count(out, "accessor:") != 5 {
		t.Errorf("list -o yaml: got exit %d, %q; want 5 tokens", code, out)
	}

	code, out, errw = hush(t, as(alice), "acl", "token", "revoke", ciAccessor)
	if want := "✔  Revoked token " + ciAccessor + "\n"; code != 0 || out != want || errw != "" {
		t.Errorf("revoke: got exit %d, stdout %q, stderr %q; want %q", code, out, errw, want)
	}
	if code, _, errw := hush(t, as(ciSecret), "get", "secrets"); code != exitError || !strings.Contains(errw, "token not valid") {
		t.Errorf("the revoked token: got exit %d, stderr %q; want it refused", code, errw)
	}
	if code, _, errw := hush(t, as(alice), "get", "secrets"); code != 0 {
		t.Errorf("alice's other token after the revoke: got exit %d, stderr %q", code, errw)
	}
}

// TestExpiredTokenMessage: the CLI says that the token expired and how to
// get and use a new one.
func TestExpiredTokenMessage(t *testing.T) {
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "nowhere.yaml"))
	addr, st, _, _ := tokenAgent(t)
	expired, _, err := st.IssueTokenTTL("alice", "", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errw := hush(t, map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": expired}, "get", "secrets")
	if code != exitError {
		t.Errorf("got exit %d, want %d", code, exitError)
	}
	for _, want := range []string{"✗  token ", "expired at", "hush acl token create --user alice", "Your token has expired", "HUSH_TOKEN"} {
		if !strings.Contains(errw, want) {
			t.Errorf("stderr %q lacks %q", errw, want)
		}
	}
}

func TestACLTokenUsage(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"revoke without accessor": {[]string{"acl", "token", "revoke"}, "takes one ACCESSOR"},
		"negative ttl":            {[]string{"acl", "token", "create", "--user", "a", "--ttl", "-1h"}, "--ttl -1h0m0s is negative"},
		"bad ttl":                 {[]string{"acl", "token", "create", "--user", "a", "--ttl", "soon"}, "invalid value"},
		"list with an argument":   {[]string{"acl", "token", "list", "x"}, "takes no arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errw := hush(t, map[string]string{"HUSH_ADDR": "http://127.0.0.1:1", "HUSH_TOKEN": "x"}, tc.args...)
			if code != exitUsage || !strings.Contains(errw, tc.wantErr) {
				t.Errorf("got exit %d, stderr %q; want %d and %q", code, errw, exitUsage, tc.wantErr)
			}
		})
	}
}
