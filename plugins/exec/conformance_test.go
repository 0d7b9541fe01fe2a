package main

import (
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

func TestConformance(t *testing.T) {
	cfg, _ := fakeSecrets(t, map[string]string{"db": "s3cret\n", "api": "k-123"})
	providertest.RunConformance(t, func() provider.Provider { return newProvider() }, providertest.Suite{
		Config:    cfg,
		BadConfig: map[string]any{"command": []string{"fake-secrets-not-installed", "{{ref}}"}},
		Existing:  map[string][]byte{"db": []byte("s3cret"), "api": []byte("k-123")},
		Missing:   []string{"missing", "also-missing"},
		Denied:    []string{"denied-db"},
	})
}

// TestConformanceCat runs the suite with a stock tool: cat of a path built
// from the reference, where cat's status 1 means not found.
func TestConformanceCat(t *testing.T) {
	_, dir := fakeSecrets(t, map[string]string{"db": "s3cret", "huge": strings.Repeat("v", api.MaxSecretSize+1)})
	providertest.RunConformance(t, func() provider.Provider { return newProvider() }, providertest.Suite{
		Config:   map[string]any{"command": []string{"/bin/cat", dir + "/{{ref}}"}, "not_found_exit_codes": []int{1}},
		Existing: map[string][]byte{"db": []byte("s3cret")},
		Missing:  []string{"missing"},
		Oversize: []string{"huge"},
	})
}
