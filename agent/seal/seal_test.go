package seal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
)

func TestFileSeal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "etc", "seal.key")
	f, err := NewFile(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("NewFile created the key before any wrap: stat err %v", err)
	}
	ct, err := f.Wrap(ctx, []byte("keyring"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o400); got != want {
		t.Errorf("key file mode: got %v, want %v", got, want)
	}
	if fi.Size() != KeySize {
		t.Errorf("key file size: got %d, want %d", fi.Size(), KeySize)
	}
	again, err := NewFile(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := again.Unwrap(ctx, ct)
	if err != nil || string(plain) != "keyring" {
		t.Fatalf("unwrap with the same key file: got %q, %v, want %q", plain, err, "keyring")
	}

	other, err := NewFile(filepath.Join(t.TempDir(), "other.key"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Unwrap(ctx, ct); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unwrap without a key file: got %v, want it to say the key file does not exist", err)
	}
	if _, err := other.Wrap(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Unwrap(ctx, ct); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("unwrap with another key: got %v, want it to say it is another key", err)
	}
}

func TestFileSealRefuses(t *testing.T) {
	tests := map[string]struct {
		mode os.FileMode
		size int
		want string
	}{
		"group readable": {mode: 0o440, size: KeySize, want: "chmod 400"},
		"other readable": {mode: 0o404, size: KeySize, want: "chmod 400"},
		"short":          {mode: 0o400, size: 16, want: "holds 16 bytes, want 32"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seal.key")
			if err := os.WriteFile(path, make([]byte, tc.size), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode)
			_, err := NewFile(path, hclog.NewNullLogger())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNewRefusesKeyInsideDataDir(t *testing.T) {
	data := t.TempDir()
	_, err := New(&config.SealConfig{Kind: config.SealFile, Path: filepath.Join(data, "sub", "seal.key")}, data, hclog.NewNullLogger())
	if err == nil || !strings.Contains(err.Error(), "inside the data dir") {
		t.Fatalf("got %v, want a refusal of a key inside the data dir", err)
	}
}

func TestEnvSeal(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", KeySize)))
	tests := map[string]struct {
		value string
		set   bool
		want  string // "" means it works
	}{
		"good":       {value: key, set: true},
		"missing":    {want: "is not set"},
		"empty":      {set: true, want: "is not set"},
		"not base64": {value: "!!!", set: true, want: "is not base64"},
		"short":      {value: base64.StdEncoding.EncodeToString([]byte("short")), set: true, want: "holds 5 bytes, want 32"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			const v = "HUSH_TEST_SEAL_KEY"
			if tc.set {
				t.Setenv(v, tc.value)
			} else {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
			e, err := NewEnv(v)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), v) {
					t.Fatalf("got %v, want an error naming %s and containing %q", err, v, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ct, err := e.Wrap(context.Background(), []byte("keyring"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(ct), "keyring") {
				t.Errorf("the wrapped bytes hold the plaintext")
			}
			if plain, err := e.Unwrap(context.Background(), ct); err != nil || string(plain) != "keyring" {
				t.Fatalf("got %q, %v, want %q", plain, err, "keyring")
			}
		})
	}
}

// fakeTransit speaks the Transit engine's documented encrypt and decrypt
// responses, "encrypting" by base64 under a "vault:v1:" prefix.
func fakeTransit(t *testing.T, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != token {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":["permission denied"]}`))
			return
		}
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		switch r.URL.Path {
		case "/v1/transit/encrypt/hush":
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"ciphertext": "vault:v1:" + body["plaintext"], "key_version": 1}})
		case "/v1/transit/decrypt/hush":
			ct, ok := strings.CutPrefix(body["ciphertext"], "vault:v1:")
			if !ok {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"errors":["invalid ciphertext: no prefix"]}`))
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"plaintext": ct}})
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTransitSeal(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("VAULT_TOKEN", "")
	srv := fakeTransit(t, "s.good")
	ctx := context.Background()
	tr, err := NewTransit(&config.SealConfig{Kind: config.SealTransit, Address: srv.URL, Token: "s.good", KeyName: "hush", MountPath: "transit"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ct, err := tr.Wrap(ctx, []byte("keyring"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ct), "vault:v1:") {
		t.Errorf("got ciphertext %q, want Transit's vault:v1: form", ct)
	}
	if plain, err := tr.Unwrap(ctx, ct); err != nil || string(plain) != "keyring" {
		t.Fatalf("got %q, %v, want %q", plain, err, "keyring")
	}
	if _, err := tr.Unwrap(ctx, []byte("garbage")); err == nil || !strings.Contains(err.Error(), "invalid ciphertext") {
		t.Errorf("decrypt error response: got %v, want Vault's error passed on", err)
	}

	bad, err := NewTransit(&config.SealConfig{Kind: config.SealTransit, Address: srv.URL, Token: "s.bad", KeyName: "hush", MountPath: "transit"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Wrap(ctx, []byte("keyring")); err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "transit/encrypt/hush") {
		t.Errorf("encrypt with a bad token: got %v, want permission denied naming the path", err)
	}
	if _, err := NewTransit(&config.SealConfig{Kind: config.SealTransit, Address: srv.URL, KeyName: "hush"}, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "VAULT_TOKEN") {
		t.Errorf("no token: got %v, want it to name VAULT_TOKEN", err)
	}
}
