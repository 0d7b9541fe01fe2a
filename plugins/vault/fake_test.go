package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeVault answers the parts of Vault's HTTP API that the provider uses,
// with the JSON bodies Vault documents: KV v2 under the mount "secret",
// KV v1 under "kv", and AppRole login under auth/approle (or f.mount).
type fakeVault struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	tokens    map[string]bool           // tokens Vault accepts
	kv1       map[string]map[string]any // path below kv/ → data
	kv2       map[string]map[string]any // path below secret/data/ → data
	deleted   map[string]bool           // KV v2 paths whose current version is deleted
	denied    map[string]bool           // API paths the token may not read
	sealed    bool
	namespace string // the X-Vault-Namespace every request must carry
	mount     string // where AppRole is mounted
	roleID    string
	secretID  string
	logins    int            // AppRole logins so far; login n issues token "approle-n"
	reads     map[string]int // API path → reads
}

func newFakeVault(t *testing.T) *fakeVault {
	f := &fakeVault{
		t:       t,
		tokens:  map[string]bool{},
		kv1:     map[string]map[string]any{},
		kv2:     map[string]map[string]any{},
		deleted: map[string]bool{},
		denied:  map[string]bool{},
		reads:   map[string]int{},
		mount:   "approle",
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func errorsBody(errs ...string) map[string]any {
	if errs == nil {
		errs = []string{}
	}
	return map[string]any{"errors": errs}
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-Vault-Request") != "true" {
		f.t.Errorf("%s %s: no X-Vault-Request header", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("X-Vault-Namespace"); got != f.namespace {
		f.t.Errorf("%s %s: got namespace %q, want %q", r.Method, r.URL.Path, got, f.namespace)
	}
	if f.sealed {
		reply(w, http.StatusServiceUnavailable, errorsBody("Vault is sealed"))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	// Vault takes PUT and POST alike; the Go client sends PUT.
	if path == "auth/"+f.mount+"/login" && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		f.login(w, r)
		return
	}
	if r.Method != http.MethodGet {
		reply(w, http.StatusMethodNotAllowed, errorsBody("unsupported method"))
		return
	}
	f.reads[path]++
	if !f.tokens[r.Header.Get("X-Vault-Token")] || f.denied[path] {
		reply(w, http.StatusForbidden, errorsBody("permission denied"))
		return
	}
	if p, ok := strings.CutPrefix(path, "secret/data/"); ok {
		switch data, found := f.kv2[p]; {
		case f.deleted[p]:
			reply(w, http.StatusNotFound, map[string]any{"data": map[string]any{
				"data":     nil,
				"metadata": map[string]any{"version": 2, "deletion_time": "2024-01-01T00:00:00Z", "destroyed": false},
			}})
		case found:
			reply(w, http.StatusOK, map[string]any{"request_id": "r", "lease_duration": 0, "data": map[string]any{
				"data":     data,
				"metadata": map[string]any{"version": 1, "created_time": "2024-01-01T00:00:00Z", "deletion_time": "", "destroyed": false},
			}})
		default:
			reply(w, http.StatusNotFound, errorsBody())
		}
		return
	}
	if p, ok := strings.CutPrefix(path, "kv/"); ok {
		if data, found := f.kv1[p]; found {
			reply(w, http.StatusOK, map[string]any{"request_id": "r", "lease_duration": 2764800, "data": data})
			return
		}
	}
	reply(w, http.StatusNotFound, errorsBody())
}

func (f *fakeVault) login(w http.ResponseWriter, r *http.Request) {
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		f.t.Errorf("approle login sent a token")
	}
	var body struct {
		RoleID   string `json:"role_id"`
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		reply(w, http.StatusBadRequest, errorsBody(err.Error()))
		return
	}
	if body.RoleID != f.roleID || body.SecretID != f.secretID {
		reply(w, http.StatusBadRequest, errorsBody("invalid role or secret ID"))
		return
	}
	f.logins++
	tok := fmt.Sprintf("approle-%d", f.logins)
	f.tokens[tok] = true
	reply(w, http.StatusOK, map[string]any{"auth": map[string]any{
		"client_token": tok, "accessor": "a", "policies": []string{"default"},
		"lease_duration": 3600, "renewable": true,
	}})
}

// do runs fn with the fake's lock held, to change what it answers.
func (f *fakeVault) do(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}
