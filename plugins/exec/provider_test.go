package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
)

// fakeSecrets installs testdata/fake-secrets in a temporary directory
// with the given secrets, and returns a config that runs it.
func fakeSecrets(t *testing.T, secrets map[string]string) (cfg map[string]any, dir string) {
	t.Helper()
	dir = t.TempDir()
	script, err := os.ReadFile("testdata/fake-secrets")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fake-secrets")
	if err := os.WriteFile(bin, script, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, value := range secrets {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]any{
		"command":                      []string{"fake-secrets", "{{ref}}"},
		"env":                          map[string]string{"PATH": filepath.Dir(bin) + ":/usr/bin:/bin", "SECRETS_DIR": dir},
		"not_found_exit_codes":         []int{4},
		"permission_denied_exit_codes": []int{3},
	}, dir
}

func configure(t *testing.T, cfg map[string]any) *execProvider {
	t.Helper()
	p := newProvider()
	resp := configureRaw(t, p, cfg)
	if resp.HasErrors() {
		t.Fatalf("configure %v: %+v", cfg, resp.Diagnostics)
	}
	return p
}

func configureRaw(t *testing.T, p *execProvider, cfg map[string]any) *provider.ConfigureResponse {
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

func resolve(t *testing.T, p *execProvider, refs ...string) []provider.Result {
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
	}
	return resp.Results
}

func TestConfigureErrors(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cfg      map[string]any
		attr     string
		contains string
	}{
		"no command":         {map[string]any{}, "command", "command is required"},
		"empty command":      {map[string]any{"command": []string{}}, "command", "command is required"},
		"empty executable":   {map[string]any{"command": []string{"", "{{ref}}"}}, "command", "command is required"},
		"ref as executable":  {map[string]any{"command": []string{"{{ref}}"}}, "command", "cannot contain {{ref}}"},
		"not on PATH":        {map[string]any{"command": []string{"no-such-tool-here", "{{ref}}"}}, "command", "not found in PATH"},
		"not on given PATH":  {map[string]any{"command": []string{"cat", "{{ref}}"}, "env": map[string]string{"PATH": "/nonexistent"}}, "command", "not found in PATH"},
		"relative path":      {map[string]any{"command": []string{"./tool", "{{ref}}"}}, "command", "must be an absolute path or a bare name"},
		"missing executable": {map[string]any{"command": []string{"/no/such/tool", "{{ref}}"}}, "command", "does not exist"},
		"not executable":     {map[string]any{"command": []string{plain, "{{ref}}"}}, "command", "is not executable"},
		"directory":          {map[string]any{"command": []string{"/bin", "{{ref}}"}}, "command", "is a directory"},
		"string command":     {map[string]any{"command": "cat {{ref}}"}, "command", "command must be a list"},
		"bad timeout":        {map[string]any{"command": []string{"cat", "{{ref}}"}, "timeout": "soon"}, "timeout", "is not a duration"},
		"zero timeout":       {map[string]any{"command": []string{"cat", "{{ref}}"}, "timeout": "0s"}, "timeout", "must be positive"},
		"negative timeout":   {map[string]any{"command": []string{"cat", "{{ref}}"}, "timeout": "-1s"}, "timeout", "must be positive"},
		"bad env name":       {map[string]any{"command": []string{"cat", "{{ref}}"}, "env": map[string]string{"A=B": "x"}}, "env", "invalid variable name"},
		"bad exit code":      {map[string]any{"command": []string{"cat", "{{ref}}"}, "not_found_exit_codes": []int{0}}, "not_found_exit_codes", "not an exit code"},
		"big exit code":      {map[string]any{"command": []string{"cat", "{{ref}}"}, "permission_denied_exit_codes": []int{256}}, "permission_denied_exit_codes", "not an exit code"},
		"code in both lists": {map[string]any{"command": []string{"cat", "{{ref}}"}, "not_found_exit_codes": []int{1}, "permission_denied_exit_codes": []int{1}}, "permission_denied_exit_codes", "in both"},
		"unknown setting":    {map[string]any{"command": []string{"cat", "{{ref}}"}, "shell": true}, "shell", `unknown setting "shell"`},
		"trim not a bool":    {map[string]any{"command": []string{"cat", "{{ref}}"}, "trim_newline": "yes"}, "trim_newline", "must be a bool"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp := configureRaw(t, newProvider(), tt.cfg)
			var found bool
			for _, d := range resp.Diagnostics {
				if d.Severity == provider.SeverityError && d.Attribute == tt.attr && strings.Contains(d.Summary, tt.contains) {
					found = true
				}
			}
			if !found {
				t.Errorf("got diagnostics %+v, want an error on %q containing %q", resp.Diagnostics, tt.attr, tt.contains)
			}
		})
	}
}

func TestConfigureReportsEveryProblem(t *testing.T) {
	resp := configureRaw(t, newProvider(), map[string]any{"command": []string{}, "timeout": "x", "not_found_exit_codes": []int{-1}})
	var attrs []string
	for _, d := range resp.Diagnostics {
		attrs = append(attrs, d.Attribute)
	}
	if want := []string{"command", "timeout", "not_found_exit_codes"}; !slices.Equal(attrs, want) {
		t.Errorf("got diagnostics on %v, want %v", attrs, want)
	}
}

func TestConfigureWarnsWithoutPlaceholder(t *testing.T) {
	resp := configureRaw(t, newProvider(), map[string]any{"command": []string{"/bin/echo", "same"}})
	if resp.HasErrors() || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Severity != provider.SeverityWarning || resp.Diagnostics[0].Attribute != "command" {
		t.Errorf("got %+v, want one warning on command", resp.Diagnostics)
	}
}

func TestResolve(t *testing.T) {
	cfg, _ := fakeSecrets(t, map[string]string{"db": "pw\n", "two-lines": "a\nb\n\n", "raw": "x\r\n"})
	p := configure(t, cfg)
	results := resolve(t, p, "db", "two-lines", "raw", "missing", "denied-thing")
	for i, want := range []string{"pw", "a\nb\n", "x"} {
		if results[i].Err != nil || string(results[i].Value) != want {
			t.Errorf("%s: got %q, %v; want %q", results[i].Reference, results[i].Value, results[i].Err, want)
		}
	}
	if err := results[3].Err; !errors.Is(err, provider.ErrNotFound) || !strings.Contains(err.Error(), "no secret named missing") {
		t.Errorf("missing: got %v, want ErrNotFound quoting stderr", err)
	}
	if err := results[4].Err; !errors.Is(err, provider.ErrPermissionDenied) || strings.Contains(err.Error(), "second line") {
		t.Errorf("denied: got %v, want ErrPermissionDenied quoting only stderr's first line", err)
	}
}

func TestResolveUnmappedExitCode(t *testing.T) {
	cfg, _ := fakeSecrets(t, nil)
	cfg["not_found_exit_codes"] = []int{1}
	p := configure(t, cfg)
	err := resolve(t, p, "missing")[0].Err
	if err == nil || errors.Is(err, provider.ErrNotFound) || !strings.Contains(err.Error(), "fake-secrets exited with status 4: error: no secret named missing") {
		t.Errorf("got %v, want a plain error with the status and stderr", err)
	}
}

func TestResolveNoTrim(t *testing.T) {
	cfg, _ := fakeSecrets(t, map[string]string{"db": "pw\n"})
	cfg["trim_newline"] = false
	if got := resolve(t, configure(t, cfg), "db")[0].Value; string(got) != "pw\n" {
		t.Errorf("got %q, want %q", got, "pw\n")
	}
}

func TestResolveRunsEachReferenceOnce(t *testing.T) {
	cfg, dir := fakeSecrets(t, map[string]string{"a": "1", "b": "2"})
	results := resolve(t, configure(t, cfg), "a", "b", "a", "a")
	for i, want := range []string{"1", "2", "1", "1"} {
		if string(results[i].Value) != want {
			t.Errorf("result %d: got %q, want %q", i, results[i].Value, want)
		}
	}
	runs, _ := os.ReadFile(filepath.Join(dir, ".runs"))
	if got := strings.Fields(string(runs)); len(got) != 2 {
		t.Errorf("got runs %v, want one each for a and b", got)
	}
}

func TestResolveSubstitutesWithoutShell(t *testing.T) {
	p := configure(t, map[string]any{"command": []string{"/bin/echo", "op://vault/{{ref}}/field", "{{ref}}"}})
	tests := map[string]string{
		"db":         "op://vault/db/field db",
		"$(id) `id`": "op://vault/$(id) `id`/field $(id) `id`",
		"a b; c":     "op://vault/a b; c/field a b; c",
	}
	for ref, want := range tests {
		if got := resolve(t, p, ref)[0]; got.Err != nil || string(got.Value) != want {
			t.Errorf("%q: got %q, %v; want %q", ref, got.Value, got.Err, want)
		}
	}
}

func TestResolveRefusesOptionLikeReferences(t *testing.T) {
	p := configure(t, map[string]any{"command": []string{"/bin/echo", "{{ref}}"}})
	for _, ref := range []string{"-n", "--help", ""} {
		if r := resolve(t, p, ref)[0]; r.Err == nil {
			t.Errorf("%q: got %q, want an error", ref, r.Value)
		}
	}
	// Inside an argument a leading "-" is harmless.
	p = configure(t, map[string]any{"command": []string{"/bin/echo", "x{{ref}}"}})
	if r := resolve(t, p, "-n")[0]; r.Err != nil || string(r.Value) != "x-n" {
		t.Errorf("got %q, %v; want %q", r.Value, r.Err, "x-n")
	}
}

func TestResolveEnvironment(t *testing.T) {
	t.Setenv("HUSH_EXEC_TEST_LEAK", "leaked")
	p := configure(t, map[string]any{"command": []string{"/usr/bin/env"}, "env": map[string]string{"TOKEN": "t"}})
	got := resolve(t, p, "x")[0]
	if want := "PATH=" + defaultPath + "\nTOKEN=t"; got.Err != nil || string(got.Value) != want {
		t.Errorf("got environment %q, %v; want exactly %q", got.Value, got.Err, want)
	}
}

func TestResolveTimeout(t *testing.T) {
	p := configure(t, map[string]any{"command": []string{"/bin/sleep", "{{ref}}"}, "timeout": "200ms"})
	start := time.Now()
	err := resolve(t, p, "30")[0].Err
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Errorf("got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s, want the command killed at its timeout", d)
	}
}

func TestResolveCancelled(t *testing.T) {
	p := configure(t, map[string]any{"command": []string{"/bin/sleep", "{{ref}}"}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	resp, err := p.Resolve(ctx, &provider.ResolveRequest{References: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Results[0].Err; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the caller's context error", err)
	}
}

func TestResolveInParallel(t *testing.T) {
	p := configure(t, map[string]any{"command": []string{"/bin/sleep", "{{ref}}"}})
	start := time.Now()
	resolve(t, p, "0.5", "0.50", "0.500", "0.5000")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("four half-second runs took %s, want them run at once", d)
	}
}

func TestResolveOutputTooLarge(t *testing.T) {
	p := configure(t, map[string]any{"command": []string{"/usr/bin/head", "-c", "{{ref}}", "/dev/zero"}})
	if r := resolve(t, p, "2000000")[0]; r.Err == nil || !strings.Contains(r.Err.Error(), "larger than") {
		t.Errorf("got %d bytes, %v; want an error about the size", len(r.Value), r.Err)
	}
}

func TestResolveBeforeConfigure(t *testing.T) {
	if _, err := newProvider().Resolve(context.Background(), &provider.ResolveRequest{References: []string{"x"}}); err == nil {
		t.Error("got no error, want one saying the provider is not configured")
	}
}

func TestFirstLine(t *testing.T) {
	tests := map[string]string{
		"":                       "",
		"\n\n  oops \nmore":      "oops",
		strings.Repeat("é", 300): strings.Repeat("é", maxErrorLine) + "…",
	}
	for in, want := range tests {
		if got := firstLine([]byte(in)); got != want {
			t.Errorf("firstLine(%.20q): got %.20q, want %.20q", in, got, want)
		}
	}
}
