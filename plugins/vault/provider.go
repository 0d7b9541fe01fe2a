package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"
	hushapi "github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

const (
	// version is the plugin's own version, reported in GetInfo.
	version = "0.1.0"
	// parallel is how many paths one batch reads at once.
	parallel = 4
)

// vaultProvider reads secrets from a Vault KV secrets engine.
type vaultProvider struct {
	mu  sync.RWMutex
	cfg *settings // nil until configured
}

var _ provider.Provider = (*vaultProvider)(nil)

func newProvider() *vaultProvider { return &vaultProvider{} }

// GetInfo describes the plugin. It cannot store values.
func (p *vaultProvider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	return &provider.GetInfoResponse{Name: "vault", Version: version, APIVersions: []int{provider.APIVersion}}, nil
}

// Configure validates the config and builds the Vault client. It does not
// contact Vault: an AppRole login happens at the first Resolve.
func (p *vaultProvider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg config
	if diags := diag.Decode(req, &cfg); diags != nil {
		return &provider.ConfigureResponse{Diagnostics: diags}, nil
	}
	s, diags := cfg.validate()
	if !diag.HasErrors(diags) {
		p.mu.Lock()
		p.cfg = s
		p.mu.Unlock()
	}
	return &provider.ConfigureResponse{Diagnostics: diags}, nil
}

// Resolve reads each distinct path once and takes every reference's key
// from it.
func (p *vaultProvider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	s := p.cfg
	p.mu.RUnlock()
	if s == nil {
		return nil, errors.New("the vault provider is not configured: the host must call Configure first")
	}

	results := make([]provider.Result, len(req.References))
	keys := make([]string, len(req.References))
	paths := make([]string, len(req.References))
	reads := map[string]*read{}
	for i, ref := range req.References {
		results[i].Reference = ref
		path, key, err := parseRef(ref, s.kvVersion)
		if err != nil {
			results[i].Err = err
			continue
		}
		paths[i], keys[i] = path, key
		reads[path] = &read{}
	}
	s.readAll(ctx, reads)

	for i := range results {
		if results[i].Err != nil {
			continue
		}
		results[i].Value, results[i].Err = reads[paths[i]].value(paths[i], keys[i])
	}
	return &provider.ResolveResponse{Results: results}, nil
}

// read is the outcome of reading one path.
type read struct {
	data map[string]any
	err  error
}

func (r *read) value(path, key string) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	v, ok := r.data[key]
	if !ok {
		return nil, fmt.Errorf("%s has no key %q: %w", path, key, provider.ErrNotFound)
	}
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case json.Number:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encode %s#%s: %w", path, key, err)
		}
	}
	if len(b) > hushapi.MaxSecretSize {
		return nil, fmt.Errorf("%s#%s holds %d bytes, over the 1 MiB limit of a hush secret", path, key, len(b))
	}
	return b, nil
}

// readAll reads every path with a token from the authenticator. Paths that
// Vault refused are read once more if the authenticator then has another
// token, which covers a token that expired or was revoked early.
func (s *settings) readAll(ctx context.Context, reads map[string]*read) {
	tok, err := s.auth.token(ctx, s.client)
	if err != nil {
		for _, r := range reads {
			r.err = err
		}
		return
	}
	s.readPaths(ctx, tok, reads)

	denied := map[string]*read{}
	for path, r := range reads {
		if errors.Is(r.err, provider.ErrPermissionDenied) {
			denied[path] = r
		}
	}
	if len(denied) == 0 {
		return
	}
	s.auth.forget(tok)
	if fresh, err := s.auth.token(ctx, s.client); err == nil && fresh != tok {
		s.readPaths(ctx, fresh, denied)
	}
}

// readPaths reads paths a few at a time.
func (s *settings) readPaths(ctx context.Context, token string, reads map[string]*read) {
	c, err := s.client.CloneWithHeaders()
	if err != nil {
		for _, r := range reads {
			r.err = fmt.Errorf("set up the vault client: %w", err)
		}
		return
	}
	c.SetToken(token)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for path, r := range reads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.data, r.err = s.readPath(ctx, c, path)
		}()
	}
	wg.Wait()
}

// readPath reads one path and returns its key-value data.
func (s *settings) readPath(ctx context.Context, c *api.Client, path string) (map[string]any, error) {
	secret, err := c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, vaultError("read "+path, err)
	}
	if secret == nil || secret.Data == nil {
		return nil, fmt.Errorf("read %s: no secret there: %w", path, provider.ErrNotFound)
	}
	if s.kvVersion == 1 {
		return secret.Data, nil
	}
	data, ok := secret.Data["data"].(map[string]any)
	if !ok {
		// KV v2 answers a deleted or destroyed version with metadata only.
		return nil, fmt.Errorf("read %s: its current version is deleted or destroyed: %w", path, provider.ErrNotFound)
	}
	return data, nil
}

// vaultError maps Vault's answer to the SDK's errors, with a hint where
// there is one. Vault's messages never hold the token.
func vaultError(op string, err error) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w", op, err)
	}
	msg := strings.Join(re.Errors, "; ")
	switch {
	case re.StatusCode == 403:
		return fmt.Errorf("%s: %w: check the token's policies", op, provider.ErrPermissionDenied)
	case re.StatusCode == 404:
		return fmt.Errorf("%s: %w", op, provider.ErrNotFound)
	case re.StatusCode == 503 && strings.Contains(strings.ToLower(msg), "vault is sealed"):
		return fmt.Errorf("%s: vault is sealed: unseal it (vault operator unseal) and try again", op)
	case msg == "":
		return fmt.Errorf("%s: vault answered status %d", op, re.StatusCode)
	default:
		return fmt.Errorf("%s: vault answered status %d: %s", op, re.StatusCode, msg)
	}
}
