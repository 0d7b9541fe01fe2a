package provider

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	providerv1 "github.com/hush-sh/hush/sdk/internal/proto/provider/v1"
)

// grpcServer serves a Provider on the plugin side.
type grpcServer struct {
	providerv1.UnimplementedProviderServer
	impl Provider
}

func (s *grpcServer) GetInfo(ctx context.Context, _ *providerv1.GetInfoRequest) (*providerv1.GetInfoResponse, error) {
	resp, err := s.impl.GetInfo(ctx, &GetInfoRequest{})
	if err != nil {
		return nil, toStatus(err)
	}
	if resp == nil {
		resp = &GetInfoResponse{}
	}
	versions := make([]int32, len(resp.APIVersions))
	for i, v := range resp.APIVersions {
		versions[i] = int32(v)
	}
	return &providerv1.GetInfoResponse{
		Name:         resp.Name,
		Version:      resp.Version,
		ApiVersions:  versions,
		Capabilities: resp.Capabilities,
	}, nil
}

func (s *grpcServer) Configure(ctx context.Context, req *providerv1.ConfigureRequest) (*providerv1.ConfigureResponse, error) {
	resp, err := s.impl.Configure(ctx, &ConfigureRequest{
		APIVersion: int(req.GetApiVersion()),
		Config:     req.GetConfigJson(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if resp == nil {
		return &providerv1.ConfigureResponse{}, nil
	}
	diags := make([]*providerv1.Diagnostic, len(resp.Diagnostics))
	for i, d := range resp.Diagnostics {
		diags[i] = &providerv1.Diagnostic{
			Severity:  severityToProto(d.Severity),
			Summary:   d.Summary,
			Detail:    d.Detail,
			Attribute: d.Attribute,
		}
	}
	return &providerv1.ConfigureResponse{Diagnostics: diags}, nil
}

func (s *grpcServer) Resolve(ctx context.Context, req *providerv1.ResolveRequest) (*providerv1.ResolveResponse, error) {
	resp, err := s.impl.Resolve(ctx, &ResolveRequest{References: req.GetReferences()})
	if err != nil {
		return nil, toStatus(err)
	}
	if resp == nil {
		return &providerv1.ResolveResponse{}, nil
	}
	results := make([]*providerv1.Result, len(resp.Results))
	for i, r := range resp.Results {
		results[i] = &providerv1.Result{Reference: r.Reference, Error: toResolveError(r.Err)}
		if r.Err == nil {
			results[i].Value = r.Value
		}
	}
	return &providerv1.ResolveResponse{Results: results}, nil
}

func (s *grpcServer) Put(ctx context.Context, req *providerv1.PutRequest) (*providerv1.PutResponse, error) {
	st, ok := s.impl.(Storer)
	if !ok {
		return nil, errCannotStore
	}
	if _, err := st.Put(ctx, &PutRequest{Reference: req.GetReference(), Value: req.GetValue()}); err != nil {
		return nil, toStatus(err)
	}
	return &providerv1.PutResponse{}, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *providerv1.DeleteRequest) (*providerv1.DeleteResponse, error) {
	st, ok := s.impl.(Storer)
	if !ok {
		return nil, errCannotStore
	}
	if _, err := st.Delete(ctx, &DeleteRequest{Reference: req.GetReference()}); err != nil {
		return nil, toStatus(err)
	}
	return &providerv1.DeleteResponse{}, nil
}

// errCannotStore answers Put and Delete on a provider that is not a Storer.
var errCannotStore = status.Error(codes.Unimplemented, "this provider cannot store values")

// severityToProto maps a Severity to the wire. Anything unknown becomes
// unspecified, which the host treats as an error.
func severityToProto(s Severity) providerv1.Diagnostic_Severity {
	switch s {
	case SeverityError:
		return providerv1.Diagnostic_SEVERITY_ERROR
	case SeverityWarning:
		return providerv1.Diagnostic_SEVERITY_WARNING
	default:
		return providerv1.Diagnostic_SEVERITY_UNSPECIFIED
	}
}

func severityFromProto(s providerv1.Diagnostic_Severity) Severity {
	if s == providerv1.Diagnostic_SEVERITY_WARNING {
		return SeverityWarning
	}
	return SeverityError
}
