package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

// config is the plugin's config block: what the agent's
// plugin "env" { config { ... } } block holds, sent as JSON.
type config struct {
	// Vars maps each variable's name to its value. A reference is a name.
	Vars map[string]string `json:"vars"`
}

// envProvider serves the variables of its config. It does not read its
// own process environment: the agent starts plugins with an empty one, so
// that nothing of the agent's leaks into them.
type envProvider struct {
	// Configure and Resolve may run at the same time.
	mu   sync.RWMutex
	vars map[string]string // nil until configured
}

// The compile-time check that envProvider is a provider. A provider that
// can also store values implements provider.Storer too, and lists
// provider.CapabilityStore in GetInfo.
var _ provider.Provider = (*envProvider)(nil)

func newProvider() *envProvider { return &envProvider{} }

// GetInfo names the provider as references spell it ("env:NAME") and
// lists the API versions it speaks. The host calls it before Configure.
func (p *envProvider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	return &provider.GetInfoResponse{
		Name:        "env",
		Version:     "0.1.0",
		APIVersions: []int{provider.APIVersion},
	}, nil
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Configure checks the config. What is wrong goes back as diagnostics,
// each naming its attribute, all at once; a Go error would mean that the
// call itself failed.
func (p *envProvider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg config
	// diag.Decode rejects unknown keys and values of the wrong type with
	// a diagnostic on the attribute at fault, which the agent shows at
	// that attribute's file:line:col in the plugin block.
	if diags := diag.Decode(req, &cfg); diags != nil {
		return &provider.ConfigureResponse{Diagnostics: diags}, nil
	}

	var diags []provider.Diagnostic
	names := make([]string, 0, len(cfg.Vars))
	for name := range cfg.Vars {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order for the diagnostics
	for _, name := range names {
		if !varName.MatchString(name) {
			diags = append(diags, diag.Error("vars", fmt.Sprintf("%q is not a variable name", name),
				"use letters, digits and _, not starting with a digit"))
		}
	}
	if len(cfg.Vars) == 0 {
		diags = append(diags, diag.Warning("vars", "vars is empty: every reference will be not found", ""))
	}
	resp := &provider.ConfigureResponse{Diagnostics: diags}
	if !resp.HasErrors() {
		vars := make(map[string]string, len(cfg.Vars))
		for k, v := range cfg.Vars {
			vars[k] = v
		}
		p.mu.Lock()
		p.vars = vars
		p.mu.Unlock()
	}
	return resp, nil
}

// Resolve answers one result per reference, in order. A reference that
// has no value gets an error wrapping provider.ErrNotFound, so that the
// host can tell "no such secret" from "the provider is broken".
func (p *envProvider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	// A call whose caller has gone away answers at once.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	vars := p.vars
	p.mu.RUnlock()
	if vars == nil {
		return nil, errors.New("the env provider is not configured: the host must call Configure first")
	}

	results := make([]provider.Result, len(req.References))
	for i, ref := range req.References {
		results[i].Reference = ref
		if v, ok := vars[ref]; ok {
			results[i].Value = []byte(v)
		} else {
			results[i].Err = fmt.Errorf("no variable %q in the env provider's config: %w", ref, provider.ErrNotFound)
		}
	}
	return &provider.ResolveResponse{Results: results}, nil
}
