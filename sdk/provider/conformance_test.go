package provider_test

import (
	"testing"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/internal/memprovider"
	"github.com/hush-sh/hush/sdk/providertest"
)

func TestConformance(t *testing.T) {
	providertest.RunConformance(t, func() provider.Provider { return memprovider.New() }, providertest.Suite{
		Config: map[string]any{
			"values": map[string]string{"db/password": "hunter2", "api-key": "k\x00é\n", "empty": ""},
			"denied": []string{"root"},
		},
		BadConfig: map[string]any{"valeus": map[string]string{}},
		Existing:  map[string][]byte{"db/password": []byte("hunter2"), "api-key": []byte("k\x00é\n"), "empty": {}},
		Missing:   []string{"nope", "db/user"},
		Denied:    []string{"root"},
	})
}
