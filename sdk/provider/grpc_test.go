package provider_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

// fake answers every call as scripted. It is not a Storer.
type fake struct {
	info    *provider.GetInfoResponse
	diags   []provider.Diagnostic
	results []provider.Result
	// err, if set, is what every call returns.
	err error
	// block makes Resolve wait for its ctx, and then close canceled.
	block    bool
	canceled chan struct{}

	gotConfigure *provider.ConfigureRequest
	gotResolve   *provider.ResolveRequest
}

func (f *fake) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	return f.info, f.err
}

func (f *fake) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	f.gotConfigure = req
	if f.err != nil {
		return nil, f.err
	}
	return &provider.ConfigureResponse{Diagnostics: f.diags}, nil
}

func (f *fake) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	f.gotResolve = req
	if f.block {
		<-ctx.Done()
		close(f.canceled)
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return &provider.ResolveResponse{Results: f.results}, nil
}

func TestGetInfoRoundTrip(t *testing.T) {
	want := &provider.GetInfoResponse{Name: "fake", Version: "0.1.0", APIVersions: []int{1, 2}, Capabilities: []string{"store", "future"}}
	got, err := providertest.Serve(t, &fake{info: want}).GetInfo(t.Context(), &provider.GetInfoRequest{})
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if got.Name != want.Name || got.Version != want.Version || !slices.Equal(got.APIVersions, want.APIVersions) || !slices.Equal(got.Capabilities, want.Capabilities) {
		t.Errorf("GetInfo: got %+v, want %+v", got, want)
	}
}

// providerCalls make one call of each Provider method, by name, with a
// throwaway request.
var providerCalls = map[string]func(provider.Provider) error{
	"GetInfo": func(p provider.Provider) error {
		_, err := p.GetInfo(context.Background(), &provider.GetInfoRequest{})
		return err
	},
	"Configure": func(p provider.Provider) error {
		_, err := p.Configure(context.Background(), &provider.ConfigureRequest{})
		return err
	},
	"Resolve": func(p provider.Provider) error {
		_, err := p.Resolve(context.Background(), &provider.ResolveRequest{References: []string{"a"}})
		return err
	},
}

func TestWholeCallErrors(t *testing.T) {
	tests := map[string]struct {
		err      error
		wantIs   error
		wantCode codes.Code
		wantMsg  string
	}{
		"not found": {
			err:      fmt.Errorf("mount secret/: %w", provider.ErrNotFound),
			wantIs:   provider.ErrNotFound,
			wantCode: codes.NotFound,
			wantMsg:  "mount secret/: not found",
		},
		"permission denied": {
			err:      fmt.Errorf("token lacks read on secret/: %w", provider.ErrPermissionDenied),
			wantIs:   provider.ErrPermissionDenied,
			wantCode: codes.PermissionDenied,
			wantMsg:  "token lacks read on secret/: permission denied",
		},
		"unimplemented": {
			err:      provider.ErrUnimplemented,
			wantIs:   provider.ErrUnimplemented,
			wantCode: codes.Unimplemented,
			wantMsg:  "not implemented by this provider",
		},
		"canceled": {
			err:      fmt.Errorf("read: %w", context.Canceled),
			wantIs:   context.Canceled,
			wantCode: codes.Canceled,
			wantMsg:  "read: context canceled",
		},
		"deadline": {
			err:      fmt.Errorf("read: %w", context.DeadlineExceeded),
			wantIs:   context.DeadlineExceeded,
			wantCode: codes.DeadlineExceeded,
			wantMsg:  "read: context deadline exceeded",
		},
		"other": {
			err:      errors.New("vault is sealed: unseal it and retry"),
			wantCode: codes.Unknown,
			wantMsg:  "vault is sealed: unseal it and retry",
		},
		"grpc status": {
			err:      status.Error(codes.Unavailable, "backend down"),
			wantCode: codes.Unavailable,
			wantMsg:  "rpc error: code = Unavailable desc = backend down",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := providertest.Serve(t, &fake{err: tt.err})
			for call, do := range providerCalls {
				err := do(p)
				if err == nil {
					t.Fatalf("%s: got no error, want %q", call, tt.wantMsg)
				}
				if err.Error() != tt.wantMsg {
					t.Errorf("%s: got message %q, want %q", call, err, tt.wantMsg)
				}
				for _, sentinel := range []error{provider.ErrNotFound, provider.ErrPermissionDenied, provider.ErrUnimplemented, context.Canceled, context.DeadlineExceeded} {
					if got, want := errors.Is(err, sentinel), sentinel == tt.wantIs; got != want {
						t.Errorf("%s: errors.Is(%q, %q): got %v, want %v", call, err, sentinel, got, want)
					}
				}
				if got := status.Code(err); got != tt.wantCode {
					t.Errorf("%s: got status code %v, want %v", call, got, tt.wantCode)
				}
			}
		})
	}
}

func TestResultErrors(t *testing.T) {
	f := &fake{results: []provider.Result{
		{Reference: "ok", Value: []byte("v\x00\xff")},
		{Reference: "missing", Err: fmt.Errorf("no key %q: %w", "missing", provider.ErrNotFound)},
		{Reference: "denied", Value: []byte("dropped"), Err: fmt.Errorf("policy: %w", provider.ErrPermissionDenied)},
		{Reference: "broken", Err: errors.New("exit status 3")},
		{Reference: "bare", Err: provider.ErrNotFound},
	}}
	resp, err := providertest.Serve(t, f).Resolve(t.Context(), &provider.ResolveRequest{References: []string{"ok", "missing", "denied", "broken", "bare"}})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got, want := strings.Join(f.gotResolve.References, ","), "ok,missing,denied,broken,bare"; got != want {
		t.Errorf("references the provider got: got %s, want %s", got, want)
	}
	tests := map[string]struct {
		i       int
		wantIs  error
		wantMsg string
	}{
		"not found":         {i: 1, wantIs: provider.ErrNotFound, wantMsg: `no key "missing": not found`},
		"permission denied": {i: 2, wantIs: provider.ErrPermissionDenied, wantMsg: "policy: permission denied"},
		"other":             {i: 3, wantMsg: "exit status 3"},
		"bare sentinel":     {i: 4, wantIs: provider.ErrNotFound, wantMsg: "not found"},
	}
	if got, want := len(resp.Results), len(f.results); got != want {
		t.Fatalf("got %d results, want %d", got, want)
	}
	if r := resp.Results[0]; r.Reference != "ok" || r.Err != nil || string(r.Value) != "v\x00\xff" {
		t.Errorf("result 0: got %+v, want value %q", r, "v\x00\xff")
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := resp.Results[tt.i]
			if r.Reference != f.results[tt.i].Reference {
				t.Errorf("got reference %q, want %q", r.Reference, f.results[tt.i].Reference)
			}
			if r.Err == nil {
				t.Fatalf("got no error, want %q", tt.wantMsg)
			}
			if r.Err.Error() != tt.wantMsg {
				t.Errorf("got message %q, want %q", r.Err, tt.wantMsg)
			}
			for _, sentinel := range []error{provider.ErrNotFound, provider.ErrPermissionDenied} {
				if got, want := errors.Is(r.Err, sentinel), sentinel == tt.wantIs; got != want {
					t.Errorf("errors.Is(%q, %q): got %v, want %v", r.Err, sentinel, got, want)
				}
			}
			if r.Value != nil {
				t.Errorf("got value %q with an error, want none", r.Value)
			}
		})
	}
}

func TestResolveWrongResultCount(t *testing.T) {
	f := &fake{results: []provider.Result{{Reference: "a", Value: []byte("1")}}}
	_, err := providertest.Serve(t, f).Resolve(t.Context(), &provider.ResolveRequest{References: []string{"a", "b"}})
	if err == nil || !strings.Contains(err.Error(), "returned 1 results for 2 references") {
		t.Errorf("got error %v, want one saying the plugin returned 1 result for 2 references", err)
	}
}

func TestStoreUnimplemented(t *testing.T) {
	p := providertest.Serve(t, &fake{})
	s, ok := p.(provider.Storer)
	if !ok {
		t.Fatalf("got %T, want a provider.Storer", p)
	}
	_, putErr := s.Put(t.Context(), &provider.PutRequest{Reference: "a", Value: []byte("1")})
	_, delErr := s.Delete(t.Context(), &provider.DeleteRequest{Reference: "a"})
	for call, err := range map[string]error{"Put": putErr, "Delete": delErr} {
		if !errors.Is(err, provider.ErrUnimplemented) {
			t.Errorf("%s on a provider that is not a Storer: got error %v, want one matching %q", call, err, provider.ErrUnimplemented)
		}
		if got := status.Code(err); got != codes.Unimplemented {
			t.Errorf("%s: got status code %v, want %v", call, got, codes.Unimplemented)
		}
	}
}

func TestDiagnosticsRoundTrip(t *testing.T) {
	f := &fake{diags: []provider.Diagnostic{
		{Severity: provider.SeverityError, Summary: "address is required", Detail: "set address to Vault's URL", Attribute: "address"},
		{Severity: provider.SeverityWarning, Summary: "tls_skip_verify is on", Attribute: "tls_skip_verify"},
		{Summary: "zero severity is an error"},
		{Severity: provider.Severity(42), Summary: "unknown severity is an error"},
	}}
	config := []byte(`{"address":"https://vault.internal:8200"}`)
	resp, err := providertest.Serve(t, f).Configure(t.Context(), &provider.ConfigureRequest{APIVersion: 7, Config: config})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if f.gotConfigure.APIVersion != 7 || string(f.gotConfigure.Config) != string(config) {
		t.Errorf("request the provider got: got version %d config %s, want version 7 config %s", f.gotConfigure.APIVersion, f.gotConfigure.Config, config)
	}
	want := slices.Clone(f.diags)
	want[3].Severity = provider.SeverityError
	if !slices.Equal(resp.Diagnostics, want) {
		t.Errorf("got diagnostics %+v, want %+v", resp.Diagnostics, want)
	}
	if !resp.HasErrors() {
		t.Error("HasErrors: got false, want true")
	}
}

func TestContextCancellation(t *testing.T) {
	tests := map[string]struct {
		ctx    func() (context.Context, context.CancelFunc)
		wantIs error
	}{
		"canceled": {
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantIs: context.Canceled,
		},
		"deadline": {
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			wantIs: context.DeadlineExceeded,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := &fake{block: true, canceled: make(chan struct{})}
			p := providertest.Serve(t, f)
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := p.Resolve(ctx, &provider.ResolveRequest{References: []string{"slow"}})
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("Resolve: got error %v, want one matching %q", err, tt.wantIs)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Resolve returned after %v, want promptly", d)
			}
			select {
			case <-f.canceled:
			case <-time.After(5 * time.Second):
				t.Error("the provider's ctx: still live 5s after the host's was done, want it done")
			}
		})
	}
}

// validating is fake with a Validate that refuses references without "#".
type validating struct{ fake }

func (validating) Validate(_ context.Context, req *provider.ValidateRequest) (*provider.ValidateResponse, error) {
	out := &provider.ValidateResponse{Problems: make([]string, len(req.References))}
	for i, ref := range req.References {
		if !strings.Contains(ref, "#") {
			out.Problems[i] = "write it as PATH#KEY"
		}
	}
	return out, nil
}

// Validate travels over gRPC to a provider that validates, and a provider
// that does not answers ErrUnimplemented.
func TestValidateRoundTrip(t *testing.T) {
	v, ok := providertest.Serve(t, &validating{}).(provider.Validator)
	if !ok {
		t.Fatal("the host's side of a plugin is not a provider.Validator")
	}
	resp, err := v.Validate(t.Context(), &provider.ValidateRequest{References: []string{"a#b", "ab"}})
	if err != nil || len(resp.Problems) != 2 || resp.Problems[0] != "" || resp.Problems[1] != "write it as PATH#KEY" {
		t.Errorf("Validate: got %+v, %v; want no problem, then one", resp, err)
	}
	_, err = providertest.Serve(t, &fake{}).(provider.Validator).Validate(t.Context(), &provider.ValidateRequest{References: []string{"x"}})
	if !errors.Is(err, provider.ErrUnimplemented) {
		t.Errorf("Validate on a provider that does not validate: got %v, want ErrUnimplemented", err)
	}
}
