package provider

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	providerv1 "github.com/hush-sh/hush/sdk/internal/proto/provider/v1"
)

// grpcServer serves a Provider on the plugin side. Every method recovers a
// panic in the provider as an error for that call.
type grpcServer struct {
	providerv1.UnimplementedProviderServer
	impl Provider
	// logger receives the panics recovered from impl, with their stacks.
	logger hclog.Logger
}

// maxPanicText bounds the panic text in an error, which the host puts in a
// run's error and its logs.
const maxPanicText = 1024

// recoverPanic, deferred by every method, turns a panic in the provider into
// an error for that one call: without it the panic would end the plugin
// process and fail every call in flight, and the host would restart it only
// to meet the same reference again. It must be the deferred function itself,
// for recover to work.
//
// The error and the log line carry the panic value's text and the stack,
// which are the provider's own, and nothing of the request or its values.
func (s *grpcServer) recoverPanic(method string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	text := panicText(v)
	s.logger.Error("provider panicked", "method", method, "panic", text, "stack", string(debug.Stack()))
	*err = status.Error(codes.Internal, fmt.Sprintf("provider panicked in %s: %s", method, text))
}

// panicText describes a panic value. Only strings and errors are text that
// the provider wrote to be read; any other value, such as a []byte, might
// hold a secret, so only its type is told.
func panicText(v any) string {
	var text string
	switch v := v.(type) {
	case string:
		text = v
	case error:
		text = v.Error()
	default:
		text = fmt.Sprintf("a value of type %T", v)
	}
	if len(text) > maxPanicText {
		text = text[:maxPanicText] + "..."
	}
	return text
}

func (s *grpcServer) GetInfo(ctx context.Context, _ *providerv1.GetInfoRequest) (_ *providerv1.GetInfoResponse, err error) {
	defer s.recoverPanic("GetInfo", &err)
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

func (s *grpcServer) Configure(ctx context.Context, req *providerv1.ConfigureRequest) (_ *providerv1.ConfigureResponse, err error) {
	defer s.recoverPanic("Configure", &err)
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

func (s *grpcServer) Resolve(ctx context.Context, req *providerv1.ResolveRequest) (_ *providerv1.ResolveResponse, err error) {
	defer s.recoverPanic("Resolve", &err)
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

func (s *grpcServer) Put(ctx context.Context, req *providerv1.PutRequest) (_ *providerv1.PutResponse, err error) {
	defer s.recoverPanic("Put", &err)
	st, ok := s.impl.(Storer)
	if !ok {
		return nil, errCannotStore
	}
	if _, err := st.Put(ctx, &PutRequest{Reference: req.GetReference(), Value: req.GetValue()}); err != nil {
		return nil, toStatus(err)
	}
	return &providerv1.PutResponse{}, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *providerv1.DeleteRequest) (_ *providerv1.DeleteResponse, err error) {
	defer s.recoverPanic("Delete", &err)
	st, ok := s.impl.(Storer)
	if !ok {
		return nil, errCannotStore
	}
	if _, err := st.Delete(ctx, &DeleteRequest{Reference: req.GetReference()}); err != nil {
		return nil, toStatus(err)
	}
	return &providerv1.DeleteResponse{}, nil
}

func (s *grpcServer) Validate(ctx context.Context, req *providerv1.ValidateRequest) (_ *providerv1.ValidateResponse, err error) {
	defer s.recoverPanic("Validate", &err)
	v, ok := s.impl.(Validator)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this provider does not validate references")
	}
	resp, err := v.Validate(ctx, &ValidateRequest{References: req.GetReferences()})
	if err != nil {
		return nil, toStatus(err)
	}
	if len(resp.Problems) != len(req.GetReferences()) {
		return nil, status.Errorf(codes.Internal, "the provider answered %d problems for %d references", len(resp.Problems), len(req.GetReferences()))
	}
	return &providerv1.ValidateResponse{Problems: resp.Problems}, nil
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
