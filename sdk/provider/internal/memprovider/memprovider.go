// Package memprovider is a provider that keeps its values in memory, for
// testing the SDK: in-process, over gRPC and as a real plugin process.
package memprovider

import (
	"context"
	"fmt"
	"sync"

	"github.com/hush-sh/hush/sdk/provider"
)

// Config is the provider's config block.
type Config struct {
	// Values are the references it starts with and their values.
	Values map[string]string `json:"values"`
	// Denied are references it refuses to resolve.
	Denied []string `json:"denied"`
}

// Provider keeps values in a map. It is safe for concurrent use.
type Provider struct {
	mu     sync.Mutex
	values map[string][]byte
	denied map[string]bool
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Storer   = (*Provider)(nil)
)

// New returns an empty, unconfigured Provider.
func New() *Provider {
	return &Provider{values: map[string][]byte{}, denied: map[string]bool{}}
}

// GetInfo describes the provider.
func (p *Provider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	return &provider.GetInfoResponse{
		Name:         "memory",
		Version:      "1.0.0",
		APIVersions:  []int{provider.APIVersion},
		Capabilities: []string{provider.CapabilityStore},
	}, nil
}

// Configure loads the config's values.
func (p *Provider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg Config
	if err := req.Decode(&cfg); err != nil {
		return &provider.ConfigureResponse{Diagnostics: []provider.Diagnostic{{
			Severity: provider.SeverityError,
			Summary:  err.Error(),
			Detail:   `settings are "values" (an object of strings) and "denied" (a list of references)`,
		}}}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ref, v := range cfg.Values {
		p.values[ref] = []byte(v)
	}
	for _, ref := range cfg.Denied {
		p.denied[ref] = true
	}
	return &provider.ConfigureResponse{}, nil
}

// Resolve looks the references up.
func (p *Provider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	results := make([]provider.Result, len(req.References))
	for i, ref := range req.References {
		results[i].Reference = ref
		switch v, ok := p.values[ref]; {
		case p.denied[ref]:
			results[i].Err = fmt.Errorf("reading %q: %w", ref, provider.ErrPermissionDenied)
		case !ok:
			results[i].Err = fmt.Errorf("no value for %q: %w", ref, provider.ErrNotFound)
		default:
			results[i].Value = v
		}
	}
	return &provider.ResolveResponse{Results: results}, nil
}

// Put stores a value.
func (p *Provider) Put(ctx context.Context, req *provider.PutRequest) (*provider.PutResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.denied[req.Reference] {
		return nil, fmt.Errorf("writing %q: %w", req.Reference, provider.ErrPermissionDenied)
	}
	p.values[req.Reference] = append([]byte(nil), req.Value...)
	return &provider.PutResponse{}, nil
}

// Delete removes a value.
func (p *Provider) Delete(ctx context.Context, req *provider.DeleteRequest) (*provider.DeleteResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.values[req.Reference]; !ok {
		return nil, fmt.Errorf("no value for %q: %w", req.Reference, provider.ErrNotFound)
	}
	delete(p.values, req.Reference)
	return &provider.DeleteResponse{}, nil
}
