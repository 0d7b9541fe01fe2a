package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/provider"
)

// configure returns a provider configured with cfg, failing the test on
// any error diagnostic.
func configure(t *testing.T, cfg map[string]any) *fileProvider {
	t.Helper()
	p := newProvider()
	resp := configureRaw(t, p, cfg)
	if resp.HasErrors() {
		t.Fatalf("configure %v: %+v", cfg, resp.Diagnostics)
	}
	return p
}

func configureRaw(t *testing.T, p *fileProvider, cfg map[string]any) *provider.ConfigureResponse {
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

func resolve(t *testing.T, p *fileProvider, refs ...string) []provider.Result {
	t.Helper()
	resp, err := p.Resolve(context.Background(), &provider.ResolveRequest{References: refs})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if len(resp.Results) != len(refs) {
		t.Fatalf("got %d results, want %d", len(resp.Results), len(refs))
	}
	return resp.Results
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "plain"), "x")
	badEnv := writeFile(t, filepath.Join(dir, "bad.env"), "NOPE\n")
	badJSON := writeFile(t, filepath.Join(dir, "bad.json"), "[1, 2]")
	tests := map[string]struct {
		cfg      map[string]any
		attr     string
		contains string
	}{
		"nothing set":        {map[string]any{}, "", "set one of dir, dotenv or json"},
		"two set":            {map[string]any{"dir": dir, "json": file}, "json", "json cannot be set together with dir"},
		"unknown key":        {map[string]any{"dir": dir, "dri": dir}, "dri", `unknown setting "dri"`},
		"wrong type":         {map[string]any{"dir": 3}, "dir", "dir must be a string"},
		"relative dir":       {map[string]any{"dir": "secrets"}, "dir", "dir must be an absolute path"},
		"relative dotenv":    {map[string]any{"dotenv": "./app.env"}, "dotenv", "dotenv must be an absolute path"},
		"relative json":      {map[string]any{"json": "app.json"}, "json", "json must be an absolute path"},
		"missing dir":        {map[string]any{"dir": filepath.Join(dir, "nope")}, "dir", "does not exist"},
		"dir is a file":      {map[string]any{"dir": file}, "dir", "is not a directory"},
		"missing dotenv":     {map[string]any{"dotenv": filepath.Join(dir, "nope.env")}, "dotenv", "does not exist"},
		"missing json":       {map[string]any{"json": filepath.Join(dir, "nope.json")}, "json", "does not exist"},
		"dotenv is a dir":    {map[string]any{"dotenv": dir}, "dotenv", "cannot be read"},
		"dotenv parse error": {map[string]any{"dotenv": badEnv}, "dotenv", "does not parse"},
		"json not an object": {map[string]any{"json": badJSON}, "json", "does not parse"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp := configureRaw(t, newProvider(), tt.cfg)
			if !resp.HasErrors() {
				t.Fatalf("got no error diagnostic, want one about %q", tt.attr)
			}
			d := resp.Diagnostics[0]
			if d.Attribute != tt.attr || !strings.Contains(d.Summary, tt.contains) {
				t.Errorf("got diagnostic %q on %q, want one containing %q on %q", d.Summary, d.Attribute, tt.contains, tt.attr)
			}
		})
	}
}

func TestResolveBeforeConfigure(t *testing.T) {
	_, err := newProvider().Resolve(context.Background(), &provider.ResolveRequest{References: []string{"x"}})
	if err == nil {
		t.Fatal("got no error, want one saying the provider is not configured")
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "db_password"), "s3cret\n")
	writeFile(t, filepath.Join(dir, "nested", "api_key"), "k")
	outside := writeFile(t, filepath.Join(t.TempDir(), "outside"), "do not read")
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("db_password", filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	p := configure(t, map[string]any{"dir": dir})

	tests := map[string]struct {
		ref     string
		want    string
		wantErr error
	}{
		"file":              {ref: "db_password", want: "s3cret\n"},
		"nested":            {ref: "nested/api_key", want: "k"},
		"symlink inside":    {ref: "alias", want: "s3cret\n"},
		"missing":           {ref: "nope", wantErr: provider.ErrNotFound},
		"missing nested":    {ref: "nested/nope", wantErr: provider.ErrNotFound},
		"dot dot":           {ref: "../outside", wantErr: provider.ErrPermissionDenied},
		"dot dot in middle": {ref: "nested/../../outside", wantErr: provider.ErrPermissionDenied},
		"absolute":          {ref: outside, wantErr: provider.ErrPermissionDenied},
		"symlink outside":   {ref: "escape", wantErr: provider.ErrPermissionDenied},
		"directory":         {ref: "nested", wantErr: errors.New("it is a directory")},
		"empty":             {ref: "", wantErr: errors.New("reference is empty")},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			checkResult(t, resolve(t, p, tt.ref)[0], tt.want, tt.wantErr)
		})
	}
}

// checkResult checks a value, or an error that is wantErr (for the SDK's
// sentinels) or contains its text (for any other).
func checkResult(t *testing.T, r provider.Result, want string, wantErr error) {
	t.Helper()
	switch {
	case wantErr == nil && r.Err != nil:
		t.Errorf("got error %v, want %q", r.Err, want)
	case wantErr == nil && string(r.Value) != want:
		t.Errorf("got %q, want %q", r.Value, want)
	case wantErr == provider.ErrNotFound || wantErr == provider.ErrPermissionDenied:
		if !errors.Is(r.Err, wantErr) {
			t.Errorf("got error %v, want %v", r.Err, wantErr)
		}
	case wantErr != nil && (r.Err == nil || !strings.Contains(r.Err.Error(), wantErr.Error())):
		t.Errorf("got error %v, want one containing %q", r.Err, wantErr)
	}
}

func TestDirUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode; run as another user to test EACCES")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "locked"), "x")
	if err := os.Chmod(filepath.Join(dir, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	p := configure(t, map[string]any{"dir": dir})
	checkResult(t, resolve(t, p, "locked")[0], "", provider.ErrPermissionDenied)
}

func TestFileErr(t *testing.T) {
	err := fileErr("read x", &os.PathError{Op: "open", Path: "x", Err: os.ErrPermission})
	if !errors.Is(err, provider.ErrPermissionDenied) {
		t.Errorf("got %v, want ErrPermissionDenied", err)
	}
}

func TestDirPutDelete(t *testing.T) {
	dir := t.TempDir()
	p := configure(t, map[string]any{"dir": dir})
	ctx := context.Background()

	for _, v := range []string{"first", "second"} {
		for _, ref := range []string{"app/token", "top"} {
			if _, err := p.Put(ctx, &provider.PutRequest{Reference: ref, Value: []byte(v)}); err != nil {
				t.Fatalf("put %s: %v", ref, err)
			}
			checkResult(t, resolve(t, p, ref)[0], v, nil)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "app", "token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "app")); len(entries) != 1 {
		t.Errorf("got %d files in app/, want only token (no temporary files left)", len(entries))
	}

	if _, err := p.Put(ctx, &provider.PutRequest{Reference: "../x", Value: []byte("v")}); !errors.Is(err, provider.ErrPermissionDenied) {
		t.Errorf("put ../x: got %v, want ErrPermissionDenied", err)
	}
	if _, err := p.Delete(ctx, &provider.DeleteRequest{Reference: "app/token"}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	checkResult(t, resolve(t, p, "app/token")[0], "", provider.ErrNotFound)
	if _, err := p.Delete(ctx, &provider.DeleteRequest{Reference: "app/token"}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
	if _, err := p.Delete(ctx, &provider.DeleteRequest{Reference: "app"}); err == nil {
		t.Error("delete of a directory: got no error")
	}
}

func TestStoreNeedsDir(t *testing.T) {
	env := writeFile(t, filepath.Join(t.TempDir(), "app.env"), "A=1\n")
	p := configure(t, map[string]any{"dotenv": env})
	ctx := context.Background()
	if _, err := p.Put(ctx, &provider.PutRequest{Reference: "A", Value: []byte("2")}); !errors.Is(err, provider.ErrUnimplemented) {
		t.Errorf("put: got %v, want ErrUnimplemented", err)
	}
	if _, err := p.Delete(ctx, &provider.DeleteRequest{Reference: "A"}); !errors.Is(err, provider.ErrUnimplemented) {
		t.Errorf("delete: got %v, want ErrUnimplemented", err)
	}
}

func TestDotenv(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "app.env"), "# app\nexport DB_PASSWORD='pw'\nAPI_KEY=k\n")
	p := configure(t, map[string]any{"dotenv": path})
	results := resolve(t, p, "DB_PASSWORD", "API_KEY", "NOPE")
	checkResult(t, results[0], "pw", nil)
	checkResult(t, results[1], "k", nil)
	checkResult(t, results[2], "", provider.ErrNotFound)

	// The file is read again for every batch.
	writeFile(t, path, "API_KEY=new\n")
	checkResult(t, resolve(t, p, "API_KEY")[0], "new", nil)
	writeFile(t, path, "broken\n")
	checkResult(t, resolve(t, p, "API_KEY")[0], "", errors.New("line 1: expected KEY=VALUE"))
	os.Remove(path)
	checkResult(t, resolve(t, p, "API_KEY")[0], "", provider.ErrNotFound)
}

func TestJSON(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "app.json"), `{
		"password": "pw",
		"port": 5432,
		"tls": true,
		"nothing": null,
		"db": {"user": "app", "replicas": ["r1", "r2"], "opts": {"a": 1, "b": [1, 2]}},
		"dotted.key": "literal",
		"unicode": "caf\u00e9"
	}`)
	p := configure(t, map[string]any{"json": path})
	tests := map[string]struct {
		ref     string
		want    string
		wantErr error
	}{
		"string":             {ref: "password", want: "pw"},
		"number":             {ref: "port", want: "5432"},
		"bool":               {ref: "tls", want: "true"},
		"null":               {ref: "nothing", want: "null"},
		"object":             {ref: "db.opts", want: `{"a":1,"b":[1,2]}`},
		"nested string":      {ref: "db.user", want: "app"},
		"array index":        {ref: "db.replicas.1", want: "r2"},
		"literal dotted":     {ref: "dotted.key", want: "literal"},
		"escapes decoded":    {ref: "unicode", want: "café"},
		"missing":            {ref: "nope", wantErr: provider.ErrNotFound},
		"missing nested":     {ref: "db.nope", wantErr: provider.ErrNotFound},
		"index out of range": {ref: "db.replicas.2", wantErr: provider.ErrNotFound},
		"bad index":          {ref: "db.replicas.x", wantErr: provider.ErrNotFound},
		"into a string":      {ref: "password.x", wantErr: provider.ErrNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			checkResult(t, resolve(t, p, tt.ref)[0], tt.want, tt.wantErr)
		})
	}
}
