package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/provider"
)

func TestMain(m *testing.M) {
	// A sealed Vault is retried with backoff; the tests need no patience.
	maxRetries = 0
	os.Exit(m.Run())
}

const testToken = "hvs.test-token"

func configure(t *testing.T, cfg map[string]any) *vaultProvider {
	t.Helper()
	p := newProvider()
	resp := configureRaw(t, p, cfg)
	if resp.HasErrors() {
		t.Fatalf("configure %v: %+v", cfg, resp.Diagnostics)
	}
	return p
}

func configureRaw(t *testing.T, p *vaultProvider, cfg map[string]any) *provider.ConfigureResponse {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Configure(context.Background(), &provider.ConfigureRequest{APIVersion: provider.APIVersion, Config: raw})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	return resp
}

func resolve(t *testing.T, p *vaultProvider, refs ...string) []provider.Result {
	t.Helper()
	resp, err := p.Resolve(context.Background(), &provider.ResolveRequest{References: refs})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if len(resp.Results) != len(refs) {
		t.Fatalf("got %d results, want %d", len(resp.Results), len(refs))
	}
	for i, r := range resp.Results {
		if r.Reference != refs[i] {
			t.Errorf("result %d is for %q, want %q", i, r.Reference, refs[i])
		}
		if r.Err != nil && strings.Contains(r.Err.Error(), testToken) {
			t.Errorf("error %q shows the token", r.Err)
		}
	}
	return resp.Results
}

// checkResult checks a value, or an error that is wantErr (for the SDK's
// sentinels) or contains its text (for any other).
func checkResult(t *testing.T, r provider.Result, want string, wantErr error) {
	t.Helper()
	switch {
	case wantErr == nil && r.Err != nil:
		t.Errorf("%s: got error %v, want %q", r.Reference, r.Err, want)
	case wantErr == nil && string(r.Value) != want:
		t.Errorf("%s: got %q, want %q", r.Reference, r.Value, want)
	case wantErr == provider.ErrNotFound || wantErr == provider.ErrPermissionDenied:
		if !errors.Is(r.Err, wantErr) {
			t.Errorf("%s: got error %v, want %v", r.Reference, r.Err, wantErr)
		}
	case wantErr != nil && (r.Err == nil || !strings.Contains(r.Err.Error(), wantErr.Error())):
		t.Errorf("%s: got error %v, want one containing %q", r.Reference, r.Err, wantErr)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolveKV2(t *testing.T) {
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.kv2["db"] = map[string]any{"password": "pw", "port": 5432, "tls": true, "opts": map[string]any{"a": []int{1}}}
	f.kv2["app/api"] = map[string]any{"key": "k"}
	f.kv2["gone"] = map[string]any{"password": "old"}
	f.deleted["gone"] = true
	f.denied["secret/data/private"] = true
	p := configure(t, map[string]any{"address": f.srv.URL, "token": testToken})

	tests := map[string]struct {
		ref     string
		want    string
		wantErr error
	}{
		"api path":         {ref: "secret/data/db#password", want: "pw"},
		"logical path":     {ref: "secret/db#password", want: "pw"},
		"leading slash":    {ref: "/secret/db#password", want: "pw"},
		"number":           {ref: "secret/db#port", want: "5432"},
		"bool":             {ref: "secret/db#tls", want: "true"},
		"object":           {ref: "secret/db#opts", want: `{"a":[1]}`},
		"nested path":      {ref: "secret/app/api#key", want: "k"},
		"missing key":      {ref: "secret/db#nope", wantErr: provider.ErrNotFound},
		"missing path":     {ref: "secret/data/nope#password", wantErr: provider.ErrNotFound},
		"deleted version":  {ref: "secret/gone#password", wantErr: provider.ErrNotFound},
		"denied":           {ref: "secret/private#password", wantErr: provider.ErrPermissionDenied},
		"no key":           {ref: "secret/db", wantErr: errors.New("reference must be PATH#KEY")},
		"empty key":        {ref: "secret/db#", wantErr: errors.New("reference must be PATH#KEY")},
		"mount only":       {ref: "secret#password", wantErr: errors.New("must be MOUNT/PATH")},
		"dot dot":          {ref: "secret/../sys/health#x", wantErr: errors.New(`".." segment`)},
		"unknown mount":    {ref: "nomount/db#password", wantErr: provider.ErrNotFound},
		"deleted message":  {ref: "secret/gone#password", wantErr: errors.New("deleted or destroyed")},
		"denied has hint":  {ref: "secret/private#password", wantErr: errors.New("check the token's policies")},
		"missing key says": {ref: "secret/db#nope", wantErr: errors.New(`secret/data/db has no key "nope"`)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			checkResult(t, resolve(t, p, tt.ref)[0], tt.want, tt.wantErr)
		})
	}
}

func TestResolveReadsEachPathOnce(t *testing.T) {
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.kv2["db"] = map[string]any{"user": "u", "password": "pw"}
	f.kv2["api"] = map[string]any{"key": "k"}
	p := configure(t, map[string]any{"address": f.srv.URL, "token": testToken})
	results := resolve(t, p, "secret/db#user", "secret/data/db#password", "secret/api#key", "secret/db#user", "bad")
	for i, want := range []string{"u", "pw", "k", "u"} {
		checkResult(t, results[i], want, nil)
	}
	checkResult(t, results[4], "", errRefFormat)
	f.do(func() {
		if f.reads["secret/data/db"] != 1 || f.reads["secret/data/api"] != 1 || len(f.reads) != 2 {
			t.Errorf("got reads %v, want one of each path", f.reads)
		}
	})
}

func TestResolveKV1(t *testing.T) {
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.kv1["db"] = map[string]any{"password": "pw"}
	f.kv1["data/odd"] = map[string]any{"k": "v"}
	p := configure(t, map[string]any{"address": f.srv.URL, "token": testToken, "kv_version": 1})
	results := resolve(t, p, "kv/db#password", "kv/data/odd#k", "kv/db#nope", "kv/nope#password")
	checkResult(t, results[0], "pw", nil)
	checkResult(t, results[1], "v", nil)
	checkResult(t, results[2], "", provider.ErrNotFound)
	checkResult(t, results[3], "", provider.ErrNotFound)
}

func TestResolveSealed(t *testing.T) {
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.sealed = true
	p := configure(t, map[string]any{"address": f.srv.URL, "token": testToken})
	r := resolve(t, p, "secret/db#password")[0]
	checkResult(t, r, "", errors.New("vault is sealed: unseal it"))
	if errors.Is(r.Err, provider.ErrNotFound) || errors.Is(r.Err, provider.ErrPermissionDenied) {
		t.Errorf("got %v, want neither not found nor permission denied", r.Err)
	}
}

func TestResolveWrongToken(t *testing.T) {
	f := newFakeVault(t)
	f.kv2["db"] = map[string]any{"password": "pw"}
	p := configure(t, map[string]any{"address": f.srv.URL, "token": testToken})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "", provider.ErrPermissionDenied)
	f.do(func() {
		if f.reads["secret/data/db"] != 1 {
			t.Errorf("got %d reads, want 1: a static token is not worth retrying", f.reads["secret/data/db"])
		}
	})
}

func TestResolveUnreachable(t *testing.T) {
	srv := httptest.NewServer(nil)
	addr := srv.URL
	srv.Close()
	p := configure(t, map[string]any{"address": addr, "token": testToken, "timeout": "2s"})
	r := resolve(t, p, "secret/db#password")[0]
	if r.Err == nil || errors.Is(r.Err, provider.ErrNotFound) || !strings.Contains(r.Err.Error(), "read secret/data/db") {
		t.Errorf("got %v, want a plain error naming the path", r.Err)
	}
}

func TestNamespace(t *testing.T) {
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.namespace = "team-a"
	f.kv2["db"] = map[string]any{"password": "pw"}
	p := configure(t, map[string]any{"address": f.srv.URL, "token": testToken, "namespace": "/team-a/"})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)
}

func TestTokenFile(t *testing.T) {
	f := newFakeVault(t)
	f.tokens["first"] = true
	f.kv2["db"] = map[string]any{"password": "pw"}
	path := writeFile(t, "token", "first\n")
	p := configure(t, map[string]any{"address": f.srv.URL, "token_file": path})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)

	// A Vault Agent sink rotates the token.
	f.do(func() { f.tokens = map[string]bool{"second": true} })
	if err := os.WriteFile(path, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)

	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkResult(t, resolve(t, p, "secret/db#password")[0], "", errors.New("is empty"))
}

func TestAppRole(t *testing.T) {
	f := newFakeVault(t)
	f.roleID, f.secretID = "role", "s3cret-id"
	f.kv2["db"] = map[string]any{"password": "pw"}
	secretIDFile := writeFile(t, "secret-id", "s3cret-id\n")
	p := configure(t, map[string]any{"address": f.srv.URL, "approle": map[string]any{"role_id": "role", "secret_id_file": secretIDFile}})

	for range 3 {
		checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)
	}
	f.do(func() {
		if f.logins != 1 {
			t.Errorf("got %d logins, want 1 while the token lasts", f.logins)
		}
		delete(f.tokens, "approle-1") // revoked before its lease ran out
	})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)
	f.do(func() {
		if f.logins != 2 {
			t.Errorf("got %d logins, want a second after the token was refused", f.logins)
		}
	})
}

func TestAppRoleCustomMount(t *testing.T) {
	f := newFakeVault(t)
	f.mount = "elsewhere"
	f.roleID = "role" // a role without a secret ID
	f.kv2["db"] = map[string]any{"password": "pw"}
	p := configure(t, map[string]any{"address": f.srv.URL, "approle": map[string]any{"role_id": "role", "mount": "/elsewhere/"}})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)

	p = configure(t, map[string]any{"address": f.srv.URL, "approle": map[string]any{"role_id": "role"}})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "", errors.New("log in with approle: auth/approle/login: vault answered status"))
}

func TestAppRoleBadSecret(t *testing.T) {
	f := newFakeVault(t)
	f.roleID, f.secretID = "role", "right"
	p := configure(t, map[string]any{"address": f.srv.URL, "approle": map[string]any{"role_id": "role", "secret_id": "wrong"}})
	results := resolve(t, p, "secret/db#password", "secret/api#key")
	for _, r := range results {
		checkResult(t, r, "", errors.New("invalid role or secret ID"))
		if strings.Contains(r.Err.Error(), "wrong") {
			t.Errorf("error %q shows the secret ID", r.Err)
		}
	}
}

func TestTLS(t *testing.T) {
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.kv2["db"] = map[string]any{"password": "pw"}
	tlsSrv := httptest.NewUnstartedServer(f.srv.Config.Handler)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake that fails on purpose
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	caCert := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})))

	p := configure(t, map[string]any{"address": tlsSrv.URL, "token": testToken})
	if r := resolve(t, p, "secret/db#password")[0]; r.Err == nil || !strings.Contains(r.Err.Error(), "certificate") {
		t.Errorf("without ca_cert: got %q, %v; want a certificate error", r.Value, r.Err)
	}
	p = configure(t, map[string]any{"address": tlsSrv.URL, "token": testToken, "ca_cert": caCert})
	checkResult(t, resolve(t, p, "secret/db#password")[0], "pw", nil)
}

func TestResolveBeforeConfigure(t *testing.T) {
	if _, err := newProvider().Resolve(context.Background(), &provider.ResolveRequest{References: []string{"a/b#c"}}); err == nil {
		t.Error("got no error, want one saying the provider is not configured")
	}
}

// Validate tells malformed references from good ones without a read.
func TestValidate(t *testing.T) {
	p := newProvider()
	resp, err := p.Validate(context.Background(), &provider.ValidateRequest{References: []string{"secret/db#password", "secret/db", "secret/../x#k", "db#k"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "reference must be PATH#KEY", `has an empty, "." or ".." segment`, "must be MOUNT/PATH"}
	for i, w := range want {
		if got := resp.Problems[i]; (w == "") != (got == "") || !strings.Contains(got, w) {
			t.Errorf("reference %d: got %q, want %q", i, got, w)
		}
	}
}
