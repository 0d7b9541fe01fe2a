package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// fakeRunsAgent answers the run listing and reads with runs, and a stop with
// the agent's refusal of an ended run.
func fakeRunsAgent(t *testing.T, runs ...*api.Run) map[string]string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/runs":
			json.NewEncoder(w).Encode(&api.ListRunsResponse{Runs: runs})
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/runs/"):
			for _, run := range runs {
				if run.Name == strings.TrimPrefix(r.URL.Path, "/v1/runs/") {
					json.NewEncoder(w).Encode(run)
					return
				}
			}
			http.NotFound(w, r)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/stop"):
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]string{"code": api.CodeRunEnded, "error": "run done has already ended (COMPLETED): nothing to stop"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return map[string]string{"HUSH_ADDR": srv.URL, "HUSH_TOKEN": "t"}
}

// TestStopEndedRun checks that stopping a run that has ended says so in
// one sentence, the agent's, without "stop run done:" before it.
func TestStopEndedRun(t *testing.T) {
	env := fakeRunsAgent(t, &api.Run{ID: "01", Name: "done", Status: api.RunCompleted})
	code, out, errw := hush(t, env, "stop", "run", "done", "-y")
	if want := "✗  run done has already ended (COMPLETED): nothing to stop\n"; code != exitError || out != "" || errw != want {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, out, errw, want)
	}
}

// TestRunSecretsOutput checks how -o json and -o yaml show which secrets
// a run gets: all of its owner's (null in the API) as all_secrets, a
// list as it is, none as [].
func TestRunSecretsOutput(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env := fakeRunsAgent(t,
		&api.Run{ID: "01", Name: "all", Status: api.RunCompleted, CreatedAt: created},
		&api.Run{ID: "02", Name: "listed", Status: api.RunCompleted, Secrets: []string{"a"}, CreatedAt: created.Add(time.Second)},
		&api.Run{ID: "03", Name: "none", Status: api.RunCompleted, Secrets: []string{}, CreatedAt: created.Add(2 * time.Second)})
	code, out, errw := hush(t, env, "get", "runs", "-o", "json")
	if code != 0 {
		t.Fatalf("get runs -o json: got exit %d, stderr %q", code, errw)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		secrets    any // nil: no secrets field
		allSecrets any // nil: no all_secrets field
	}{
		"all":    {nil, true},
		"listed": {[]any{"a"}, nil},
		"none":   {[]any{}, nil},
	}
	if len(got) != len(tests) {
		t.Fatalf("got %d runs, want %d: %s", len(got), len(tests), out)
	}
	for _, r := range got {
		tc := tests[r["name"].(string)]
		secrets, hasSecrets := r["secrets"]
		if tc.secrets == nil && hasSecrets || tc.secrets != nil && !jsonEqual(secrets, tc.secrets) {
			t.Errorf("run %s: got secrets %v (set %v), want %v", r["name"], secrets, hasSecrets, tc.secrets)
		}
		if all, ok := r["all_secrets"]; all != tc.allSecrets || ok != (tc.allSecrets != nil) {
			t.Errorf("run %s: got all_secrets %v, want %v", r["name"], all, tc.allSecrets)
		}
	}

	code, out, errw = hush(t, env, "describe", "run", "all", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "\nall_secrets: true\n") || strings.Contains(out, "secrets: null") {
		t.Errorf("describe run -o yaml: got exit %d, stdout %q, stderr %q; want all_secrets: true", code, out, errw)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
