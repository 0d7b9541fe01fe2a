package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

func configure(t *testing.T, p *envProvider, cfg map[string]any) *provider.ConfigureResponse {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Configure(context.Background(), &provider.ConfigureRequest{APIVersion: provider.APIVersion, Config: raw})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	return resp
}

func TestConfigureErrors(t *testing.T) {
	tests := map[string]struct {
		cfg      map[string]any
		attr     string
		contains string
	}{
		"bad name":    {map[string]any{"vars": map[string]string{"DB-PASSWORD": "x"}}, "vars", `"DB-PASSWORD" is not a variable name`},
		"digit first": {map[string]any{"vars": map[string]string{"1A": "x"}}, "vars", "is not a variable name"},
		"wrong type":  {map[string]any{"vars": "DB_PASSWORD=x"}, "vars", "vars must be an object, not a string"},
		"unknown key": {map[string]any{"values": map[string]string{"A": "x"}}, "values", `unknown setting "values"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp := configure(t, newProvider(), tt.cfg)
			if !resp.HasErrors() {
				t.Fatalf("got %+v, want an error", resp.Diagnostics)
			}
			if d := resp.Diagnostics[0]; d.Attribute != tt.attr || !strings.Contains(d.Summary, tt.contains) {
				t.Errorf("got %q on %q, want one containing %q on %q", d.Summary, d.Attribute, tt.contains, tt.attr)
			}
		})
	}
}

func TestConfigureWarnsWhenEmpty(t *testing.T) {
	resp := configure(t, newProvider(), map[string]any{})
	if resp.HasErrors() || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Severity != provider.SeverityWarning {
		t.Errorf("got %+v, want one warning", resp.Diagnostics)
	}
}

func TestResolve(t *testing.T) {
	p := newProvider()
	if resp := configure(t, p, map[string]any{"vars": map[string]string{"DB_PASSWORD": "s3cret", "EMPTY": ""}}); resp.HasErrors() {
		t.Fatalf("configure: %+v", resp.Diagnostics)
	}
	resp, err := p.Resolve(context.Background(), &provider.ResolveRequest{References: []string{"DB_PASSWORD", "NOPE", "EMPTY"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results[0]; r.Reference != "DB_PASSWORD" || string(r.Value) != "s3cret" || r.Err != nil {
		t.Errorf("got %+v, want DB_PASSWORD = s3cret", r)
	}
	if r := resp.Results[1]; !errors.Is(r.Err, provider.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", r.Err)
	}
	if r := resp.Results[2]; r.Err != nil || len(r.Value) != 0 {
		t.Errorf("got %q, %v; want an empty value", r.Value, r.Err)
	}
}

func TestResolveBeforeConfigure(t *testing.T) {
	if _, err := newProvider().Resolve(context.Background(), &provider.ResolveRequest{References: []string{"A"}}); err == nil {
		t.Error("got no error, want one saying the provider is not configured")
	}
}

// TestConformance runs the SDK's conformance suite, which every provider
// should pass: it calls the provider directly and over gRPC, as the agent
// does.
func TestConformance(t *testing.T) {
	providertest.RunConformance(t, func() provider.Provider { return newProvider() }, providertest.Suite{
		Config:    map[string]any{"vars": map[string]string{"DB_PASSWORD": "s3cret", "API_KEY": "k-123"}},
		BadConfig: map[string]any{"vars": map[string]string{"not a name": "x"}},
		Existing:  map[string][]byte{"DB_PASSWORD": []byte("s3cret"), "API_KEY": []byte("k-123")},
		Missing:   []string{"NOT_SET", "db_password"},
	})
}
