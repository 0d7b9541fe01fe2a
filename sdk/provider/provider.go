// Package provider is what a secret-provider plugin is written against: a
// ctx-first Go interface, the go-plugin handshake, and Serve, which turns a
// Provider into a plugin executable that the hush agent launches.
//
// A plugin's main is one call:
//
//	func main() { provider.Serve(func(log hclog.Logger) provider.Provider { return &myProvider{log: log} }) }
//
// The wire protocol is plain protobuf over gRPC (hush.provider.v1.Provider),
// so a plugin can also be written in any language.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// APIVersion is the newest provider API version this SDK speaks. The host
// picks the highest version that both sides list.
const APIVersion = 1

// Errors a provider returns, for a whole call or for one reference. They
// survive gRPC: errors.Is(err, ErrNotFound) holds on the host.
var (
	ErrNotFound         = errors.New("not found")
	ErrPermissionDenied = errors.New("permission denied")
	ErrUnimplemented    = errors.New("not implemented by this provider")
)

// Capabilities a provider may list in its info.
const (
	// CapabilityStore means the provider implements Storer.
	CapabilityStore = "store"
)

// Provider is what every plugin implements.
type Provider interface {
	// GetInfo describes the plugin. The host calls it first.
	GetInfo(ctx context.Context, req *GetInfoRequest) (*GetInfoResponse, error)
	// Configure hands the plugin its config block. Problems come back as
	// diagnostics; an error means the call itself failed.
	Configure(ctx context.Context, req *ConfigureRequest) (*ConfigureResponse, error)
	// Resolve returns the values of a batch of references, with a result
	// (value or error) for each, in the order asked.
	Resolve(ctx context.Context, req *ResolveRequest) (*ResolveResponse, error)
}

// Storer is the optional capability of providers that can store values.
type Storer interface {
	Put(ctx context.Context, req *PutRequest) (*PutResponse, error)
	Delete(ctx context.Context, req *DeleteRequest) (*DeleteResponse, error)
}

// Validator is the optional capability of providers that can tell a
// malformed reference from a good one without resolving it. The agent asks
// when a secret that holds a reference is created, and refuses one the
// provider says is malformed; with providers that are not Validators it
// takes any reference.
type Validator interface {
	Validate(ctx context.Context, req *ValidateRequest) (*ValidateResponse, error)
}

// ValidateRequest asks whether references are well formed: the part after
// "PROVIDER:".
type ValidateRequest struct {
	References []string
}

// ValidateResponse holds one problem per reference, in request order: ""
// for a reference the provider takes, or what is wrong with it and how to
// write it. It must never say whether a value exists, nor hold a value.
type ValidateResponse struct {
	Problems []string
}

// GetInfoRequest asks a plugin to describe itself.
type GetInfoRequest struct{}

// GetInfoResponse describes a plugin.
type GetInfoResponse struct {
	// Name is the provider's name, as in references ("vault:...").
	Name string
	// Version is the plugin's own version.
	Version string
	// APIVersions lists the provider API versions the plugin speaks.
	APIVersions []int
	// Capabilities lists optional capabilities, such as CapabilityStore.
	Capabilities []string
}

// ConfigureRequest carries the plugin's config block from the agent's
// configuration, as a JSON object.
type ConfigureRequest struct {
	// APIVersion is the version the host chose.
	APIVersion int
	// Config is a JSON object; empty means no config block.
	Config []byte
}

// Decode decodes the config into v, rejecting keys that v does not have, so
// that a misspelt setting is an error rather than silently ignored.
func (r *ConfigureRequest) Decode(v any) error {
	if len(bytes.TrimSpace(r.Config)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(r.Config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// ConfigureResponse reports what was wrong with the config, if anything.
type ConfigureResponse struct {
	Diagnostics []Diagnostic
}

// Severity of a diagnostic.
type Severity int

// Severities.
const (
	SeverityError Severity = iota
	SeverityWarning
)

// Diagnostic is one problem with a plugin's config.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	// Attribute names the config attribute it is about, if any.
	Attribute string
}

// HasErrors reports whether any diagnostic is an error.
func (r *ConfigureResponse) HasErrors() bool {
	for _, d := range r.Diagnostics {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// ResolveRequest asks for the values of references: the part after
// "PROVIDER:" in a secret's --from.
type ResolveRequest struct {
	References []string
}

// ResolveResponse holds one result per reference, in request order.
type ResolveResponse struct {
	Results []Result
}

// Result is the value of one reference, or why there is none.
type Result struct {
	Reference string
	Value     []byte
	// Err is nil on success. Use ErrNotFound or ErrPermissionDenied (or
	// wrap them) so that the host can tell the cases apart.
	Err error
}

// PutRequest stores a value under a reference.
type PutRequest struct {
	Reference string
	Value     []byte
}

// PutResponse answers a Put.
type PutResponse struct{}

// DeleteRequest removes a reference's value.
type DeleteRequest struct {
	Reference string
}

// DeleteResponse answers a Delete.
type DeleteResponse struct{}
