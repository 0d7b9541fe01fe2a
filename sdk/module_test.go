package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// outsideProvider is a provider as a third party writes one, in a module
// of its own that requires the SDK alone.
const outsideProvider = `package main

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

type p struct{}

func (p) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	return &provider.GetInfoResponse{Name: "outside", Version: "0.1.0", APIVersions: []int{provider.APIVersion}}, nil
}

func (p) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg struct{}
	return &provider.ConfigureResponse{Diagnostics: diag.Decode(req, &cfg)}, nil
}

func (p) Resolve(_ context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	out := &provider.ResolveResponse{}
	for _, ref := range req.References {
		out.Results = append(out.Results, provider.Result{Reference: ref, Err: provider.ErrNotFound})
	}
	return out, nil
}

func main() { provider.Serve(func(hclog.Logger) provider.Provider { return p{} }) }
`

// TestProviderBuildsOutsideTheRepo is issue 16 item 1: a provider that
// imports only the SDK builds in a fresh module that requires the SDK by
// version (a local replace stands in for the proxy), without hush's own
// module graph: no containerd, bbolt or Raft.
func TestProviderBuildsOutsideTheRepo(t *testing.T) {
	sdk, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/hush-provider-outside\n\ngo 1.26\n\nrequire github.com/hush-sh/hush/sdk v0.1.0\n\n" +
		"replace github.com/hush-sh/hush/sdk v0.1.0 => " + sdk + "\n"
	for name, body := range map[string]string{"go.mod": gomod, "main.go": outsideProvider} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gosum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o644)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	run("build", "-o", filepath.Join(dir, "hush-provider-outside"), ".")
	if _, err := os.Stat(filepath.Join(dir, "hush-provider-outside")); err != nil {
		t.Fatalf("no provider binary: %v", err)
	}
	modules := strings.Fields(run("list", "-m", "-f", "{{.Path}}", "all"))
	for _, m := range modules {
		for _, banned := range []string{"containerd", "bbolt", "hashicorp/raft", "prometheus"} {
			if strings.Contains(m, banned) {
				t.Errorf("the provider's module graph holds %s, which only the agent needs", m)
			}
		}
	}
	t.Logf("a provider built on the SDK alone has %d modules in its graph", len(modules))
}
