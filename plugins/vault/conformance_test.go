package main

import (
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

func TestConformance(t *testing.T) {
	factory := func() provider.Provider { return newProvider() }
	f := newFakeVault(t)
	f.tokens[testToken] = true
	f.roleID, f.secretID = "role", "s3cret-id"
	f.kv2["db"] = map[string]any{"user": "app", "password": "s3cret", "port": 5432}
	f.kv2["api"] = map[string]any{"key": "k-123"}
	f.kv2["huge"] = map[string]any{"blob": strings.Repeat("v", api.MaxSecretSize+1)}
	f.denied["secret/data/private"] = true
	f.kv1["db"] = map[string]any{"password": "v1-s3cret"}
	f.denied["kv/private"] = true

	kv2 := providertest.Suite{
		BadConfig: map[string]any{"address": f.srv.URL, "token": testToken, "kv_version": 3},
		Existing: map[string][]byte{
			"secret/data/db#password": []byte("s3cret"),
			"secret/db#user":          []byte("app"),
			"secret/db#port":          []byte("5432"),
			"secret/api#key":          []byte("k-123"),
		},
		Missing:  []string{"secret/db#nope", "secret/nope#password"},
		Denied:   []string{"secret/private#password"},
		Oversize: []string{"secret/huge#blob"},
	}
	t.Run("token", func(t *testing.T) {
		s := kv2
		s.Config = map[string]any{"address": f.srv.URL, "token": testToken}
		providertest.RunConformance(t, factory, s)
	})
	t.Run("approle", func(t *testing.T) {
		s := kv2
		s.Config = map[string]any{"address": f.srv.URL, "approle": map[string]any{"role_id": "role", "secret_id": "s3cret-id"}}
		providertest.RunConformance(t, factory, s)
	})
	t.Run("kv1", func(t *testing.T) {
		providertest.RunConformance(t, factory, providertest.Suite{
			Config:    map[string]any{"address": f.srv.URL, "token": testToken, "kv_version": 1},
			BadConfig: map[string]any{"address": f.srv.URL},
			Existing:  map[string][]byte{"kv/db#password": []byte("v1-s3cret")},
			Missing:   []string{"kv/db#nope", "kv/nope#password"},
			Denied:    []string{"kv/private#password"},
		})
	})
}
