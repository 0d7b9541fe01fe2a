package providertest_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
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
	// last is the last value read, which the "echoes" flaw leaks.
	last string
}

// bigReference resolves to a value over the limit of a secret, which the
// provider refuses unless it has the "oversize" flaw.
const bigReference = "big"

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
		d := provider.Diagnostic{Summary: err.Error()}
		if p.flaw == "diag echoes" {
			p.mu.Lock()
			d.Detail = fmt.Sprintf("the settings hold %v", p.values)
			p.mu.Unlock()
		}
		return &provider.ConfigureResponse{Diagnostics: []provider.Diagnostic{d}}, nil
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
	seen := map[string]bool{}
	for _, ref := range req.References {
		if p.flaw == "dedups" && seen[ref] {
			continue
		}
		seen[ref] = true
		key := ref
		if p.flaw == "panics" && ref[0] == '/' { // panics on ""
			key = ref[1:]
		}
		r := provider.Result{Reference: ref}
		v, ok := p.values[key]
		switch {
		case ref == bigReference && p.flaw == "oversize":
			r.Value = make([]byte, api.MaxSecretSize+1)
		case ref == bigReference:
			r.Err = fmt.Errorf("read %s: its value of %d bytes is over the limit of a secret", ref, api.MaxSecretSize+1)
		case ref == "locked":
			r.Err = fmt.Errorf("read %s: %w", ref, provider.ErrPermissionDenied)
		case !ok && p.flaw == "echoes":
			r.Err = fmt.Errorf("read %s (after %s): %w", ref, p.last, provider.ErrNotFound)
		case !ok && p.flaw == "unwrapped":
			r.Err = fmt.Errorf("read %s: %v", ref, provider.ErrNotFound)
		case !ok:
			r.Err = fmt.Errorf("read %s: %w", ref, provider.ErrNotFound)
		default:
			r.Value = []byte(v)
			p.last = v
		}
		results = append(results, r)
	}
	switch p.flaw {
	case "reversed":
		slices.Reverse(results)
	case "failures first":
		// As a provider that fills in results as its lookups finish,
		// failures first, and labels them by request position.
		slices.SortStableFunc(results, func(a, b provider.Result) int {
			return cmp.Compare(boolInt(a.Err == nil), boolInt(b.Err == nil))
		})
		for i := range results {
			results[i].Reference = req.References[i]
		}
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var suite = providertest.Suite{
	Config:    map[string]any{"prefix": "x"},
	BadConfig: map[string]any{"prefx": "x"},
	Existing:  map[string][]byte{"a": []byte("1"), "b": []byte("2"), "e": []byte("conformance-secret-e")},
	Missing:   []string{"c", "d"},
	Denied:    []string{"locked"},
	Oversize:  []string{bigReference},
}

func factory(flaw string) func() provider.Provider {
	return func() provider.Provider {
		return &mapProvider{flaw: flaw, values: map[string]string{"a": "1", "b": "2", "e": "conformance-secret-e"}}
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
		"bad name":       `got name "Map_Provider", want one matching ^[a-z0-9-]+$`,
		"old api":        "got API versions [2], want a list with 1",
		"config error":   "Configure(BadConfig): got error",
		"ignores ctx":    "Resolve with a canceled context: got error <nil>",
		"reversed":       "results in request order",
		"unwrapped":      "want one matching provider.ErrNotFound",
		"keeps deleted":  "after Delete",
		"echoes":         `the error of reference "c": got "read c (after <value of e>): not found", which holds the value of "e"`,
		"diag echoes":    `Configure(BadConfig): diagnostic 0: got`,
		"oversize":       `Resolve "big": got a value of 1048577 bytes and no error, want an error`,
		"panics":         `Resolve([""]): got error provider panicked in Resolve: runtime error: index out of range [0] with length 0`,
		"dedups":         "batch each twice: Resolve",
		"failures first": "batch errors last: result 0: Resolve \"a\": got error",
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
