package providertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

// flawEnv makes TestFlawedHelper run the suite against a provider with the
// flaw it names.
const flawEnv = "HUSH_PROVIDERTEST_FLAW"

// mapProvider serves a fixed map, with an optional flaw.
type mapProvider struct {
	flaw string

	mu     sync.Mutex
	values map[string]string
}

var (
	_ provider.Provider = (*mapProvider)(nil)
	_ provider.Storer   = (*mapProvider)(nil)
)

func (p *mapProvider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	info := &provider.GetInfoResponse{Name: "map", Version: "1.0.0", APIVersions: []int{provider.APIVersion}, Capabilities: []string{provider.CapabilityStore}}
	switch p.flaw {
	case "bad name":
		info.Name = "Map_Provider"
	case "old api":
		info.APIVersions = []int{provider.APIVersion + 1}
	}
	return info, nil
}

func (p *mapProvider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg struct {
		Prefix string `json:"prefix"`
	}
	if err := req.Decode(&cfg); err != nil {
		if p.flaw == "config error" {
			return nil, err
		}
		return &provider.ConfigureResponse{Diagnostics: []provider.Diagnostic{{Summary: err.Error()}}}, nil
	}
	return &provider.ConfigureResponse{}, nil
}

func (p *mapProvider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	if err := ctx.Err(); err != nil && p.flaw != "ignores ctx" {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var results []provider.Result
	for _, ref := range req.References {
		r := provider.Result{Reference: ref}
		v, ok := p.values[ref]
		switch {
		case ref == "locked":
			r.Err = fmt.Errorf("read %s: %w", ref, provider.ErrPermissionDenied)
		case !ok && p.flaw == "unwrapped":
			r.Err = fmt.Errorf("read %s: %v", ref, provider.ErrNotFound)
		case !ok:
			r.Err = fmt.Errorf("read %s: %w", ref, provider.ErrNotFound)
		default:
			r.Value = []byte(v)
		}
		results = append(results, r)
	}
	if p.flaw == "reversed" {
		slices.Reverse(results)
	}
	return &provider.ResolveResponse{Results: results}, nil
}

func (p *mapProvider) Put(_ context.Context, req *provider.PutRequest) (*provider.PutResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.values[req.Reference] = string(req.Value)
	return &provider.PutResponse{}, nil
}

func (p *mapProvider) Delete(_ context.Context, req *provider.DeleteRequest) (*provider.DeleteResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flaw != "keeps deleted" {
		delete(p.values, req.Reference)
	}
	return &provider.DeleteResponse{}, nil
}

var suite = providertest.Suite{
	Config:    map[string]any{"prefix": "x"},
	BadConfig: map[string]any{"prefx": "x"},
	Existing:  map[string][]byte{"a": []byte("1"), "b": []byte("2")},
	Missing:   []string{"c", "d"},
	Denied:    []string{"locked"},
}

func factory(flaw string) func() provider.Provider {
	return func() provider.Provider {
		return &mapProvider{flaw: flaw, values: map[string]string{"a": "1", "b": "2"}}
	}
}

func TestRunConformance(t *testing.T) {
	providertest.RunConformance(t, factory(""), suite)
}

// TestFlawedHelper is run by TestRunConformanceFindsFlaws in a child
// process, where it is meant to fail.
func TestFlawedHelper(t *testing.T) {
	flaw := os.Getenv(flawEnv)
	if flaw == "" {
		t.Skip("run by TestRunConformanceFindsFlaws")
	}
	providertest.RunConformance(t, factory(flaw), suite)
}

func TestRunConformanceFindsFlaws(t *testing.T) {
	tests := map[string]string{
		"bad name":      `got name "Map_Provider", want one matching ^[a-z0-9-]+$`,
		"old api":       "got API versions [2], want a list with 1",
		"config error":  "Configure(BadConfig): got error",
		"ignores ctx":   "Resolve with a canceled context: got error <nil>",
		"reversed":      "results in request order",
		"unwrapped":     "want one matching provider.ErrNotFound",
		"keeps deleted": "after Delete",
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for flaw, want := range tests {
		t.Run(flaw, func(t *testing.T) {
			cmd := exec.Command(self, "-test.run=^TestFlawedHelper$")
			cmd.Env = append(os.Environ(), flawEnv+"="+flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("got error %v, want the suite to fail\n%s", err, out)
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("got output\n%s\nwant it to contain %q", out, want)
			}
		})
	}
}
