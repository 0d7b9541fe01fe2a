package provider

import (
	"context"
	"fmt"

	providerv1 "github.com/hush-sh/hush/sdk/internal/proto/provider/v1"
)

// grpcClient is the host's view of a plugin. Errors come back typed:
// errors.Is(err, ErrNotFound) and the like hold as they did in the plugin,
// ErrUnimplemented means the plugin does not support the call (an older
// plugin without Put, or one that cannot store), and a canceled or expired
// ctx gives context.Canceled or context.DeadlineExceeded.
type grpcClient struct {
	client providerv1.ProviderClient
}

var (
	_ Provider = (*grpcClient)(nil)
	_ Storer   = (*grpcClient)(nil)
)

func (c *grpcClient) GetInfo(ctx context.Context, _ *GetInfoRequest) (*GetInfoResponse, error) {
	resp, err := c.client.GetInfo(ctx, &providerv1.GetInfoRequest{})
	if err != nil {
		return nil, fromStatus(err)
	}
	versions := make([]int, len(resp.GetApiVersions()))
	for i, v := range resp.GetApiVersions() {
		versions[i] = int(v)
	}
	return &GetInfoResponse{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		APIVersions:  versions,
		Capabilities: resp.GetCapabilities(),
	}, nil
}

func (c *grpcClient) Configure(ctx context.Context, req *ConfigureRequest) (*ConfigureResponse, error) {
	resp, err := c.client.Configure(ctx, &providerv1.ConfigureRequest{
		ApiVersion: int32(req.APIVersion),
		ConfigJson: req.Config,
	})
	if err != nil {
		return nil, fromStatus(err)
	}
	out := &ConfigureResponse{}
	for _, d := range resp.GetDiagnostics() {
		out.Diagnostics = append(out.Diagnostics, Diagnostic{
			Severity:  severityFromProto(d.GetSeverity()),
			Summary:   d.GetSummary(),
			Detail:    d.GetDetail(),
			Attribute: d.GetAttribute(),
		})
	}
	return out, nil
}

func (c *grpcClient) Resolve(ctx context.Context, req *ResolveRequest) (*ResolveResponse, error) {
	resp, err := c.client.Resolve(ctx, &providerv1.ResolveRequest{References: req.References})
	if err != nil {
		return nil, fromStatus(err)
	}
	// The host indexes results by request position, so a plugin that
	// breaks the one-result-per-reference rule must not get through.
	if got, want := len(resp.GetResults()), len(req.References); got != want {
		return nil, fmt.Errorf("resolve: the plugin returned %d results for %d references, which breaks the provider protocol; report it to the plugin's author", got, want)
	}
	results := make([]Result, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		results[i] = Result{Reference: r.GetReference(), Err: fromResolveError(r.GetError())}
		if results[i].Err == nil {
			results[i].Value = r.GetValue()
		}
	}
	return &ResolveResponse{Results: results}, nil
}

func (c *grpcClient) Put(ctx context.Context, req *PutRequest) (*PutResponse, error) {
	if _, err := c.client.Put(ctx, &providerv1.PutRequest{Reference: req.Reference, Value: req.Value}); err != nil {
		return nil, fromStatus(err)
	}
	return &PutResponse{}, nil
}

// Validate asks the plugin to check references. A plugin that does not
// validate references answers ErrUnimplemented.
func (c *grpcClient) Validate(ctx context.Context, req *ValidateRequest) (*ValidateResponse, error) {
	resp, err := c.client.Validate(ctx, &providerv1.ValidateRequest{References: req.References})
	if err != nil {
		return nil, fromStatus(err)
	}
	if len(resp.GetProblems()) != len(req.References) {
		return nil, fmt.Errorf("validate: the plugin answered %d problems for %d references", len(resp.GetProblems()), len(req.References))
	}
	return &ValidateResponse{Problems: resp.GetProblems()}, nil
}

func (c *grpcClient) Delete(ctx context.Context, req *DeleteRequest) (*DeleteResponse, error) {
	if _, err := c.client.Delete(ctx, &providerv1.DeleteRequest{Reference: req.Reference}); err != nil {
		return nil, fromStatus(err)
	}
	return &DeleteResponse{}, nil
}

// The host's side of a plugin is a Provider, a Storer and a Validator; a
// plugin that is not one of the latter answers ErrUnimplemented.
var (
	_ Storer    = (*grpcClient)(nil)
	_ Validator = (*grpcClient)(nil)
)
