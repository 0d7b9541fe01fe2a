package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

func TestConformance(t *testing.T) {
	factory := func() provider.Provider { return newProvider() }

	t.Run("dir", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "db_password"), "s3cret\n")
		writeFile(t, filepath.Join(dir, "app", "api_key"), "k-123")
		outside := writeFile(t, filepath.Join(t.TempDir(), "outside"), "x")
		if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "huge"), strings.Repeat("x", api.MaxSecretSize+1))
		providertest.RunConformance(t, factory, providertest.Suite{
			Config:    map[string]any{"dir": dir},
			BadConfig: map[string]any{"dir": "relative/dir"},
			Existing:  map[string][]byte{"db_password": []byte("s3cret\n"), "app/api_key": []byte("k-123")},
			Missing:   []string{"missing", "app/missing"},
			Denied:    []string{"../outside", outside, "escape"},
			Oversize:  []string{"huge"},
		})
	})

	t.Run("dotenv", func(t *testing.T) {
		path := writeFile(t, filepath.Join(t.TempDir(), "app.env"), "export DB_PASSWORD=s3cret\nGREETING=\"hello, world\" # quoted\n")
		providertest.RunConformance(t, factory, providertest.Suite{
			Config:    map[string]any{"dotenv": path},
			BadConfig: map[string]any{"dotenv": path, "json": path},
			Existing:  map[string][]byte{"DB_PASSWORD": []byte("s3cret"), "GREETING": []byte("hello, world")},
			Missing:   []string{"NOPE", "db_password"},
		})
	})

	t.Run("json", func(t *testing.T) {
		path := writeFile(t, filepath.Join(t.TempDir(), "app.json"), `{"password": "s3cret", "db": {"port": 5432, "hosts": ["a", "b"]}}`)
		providertest.RunConformance(t, factory, providertest.Suite{
			Config:    map[string]any{"json": path},
			BadConfig: map[string]any{"json": filepath.Join(t.TempDir(), "missing.json")},
			Existing:  map[string][]byte{"password": []byte("s3cret"), "db.port": []byte("5432"), "db.hosts": []byte(`["a","b"]`)},
			Missing:   []string{"nope", "db.nope", "db.hosts.2"},
		})
	})
}

// TestCapabilities checks that store is offered before the config is
// known, and kept only by dir mode.
func TestCapabilities(t *testing.T) {
	ctx := context.Background()
	canStore := func(p *fileProvider) bool {
		info, err := p.GetInfo(ctx, &provider.GetInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(info.Capabilities, provider.CapabilityStore)
	}
	if !canStore(newProvider()) {
		t.Error("unconfigured: got no store capability, want it offered")
	}
	if p := configure(t, map[string]any{"dir": t.TempDir()}); !canStore(p) {
		t.Error("dir mode: got no store capability, want it")
	}
	env := writeFile(t, filepath.Join(t.TempDir(), "app.env"), "A=1\n")
	if p := configure(t, map[string]any{"dotenv": env}); canStore(p) {
		t.Error("dotenv mode: got the store capability, want none")
	}
}
