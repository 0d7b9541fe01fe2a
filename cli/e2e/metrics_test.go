package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMetrics scrapes an agent that created a secret and ran a run: on
// its metrics_bind listener without a token, and through the API with a
// management token only.
func TestMetrics(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\nmetrics_bind = %q\n", filepath.Join(dir, "state"), metricsAddr))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	user := a.newUser("alice")
	a.mustHush(user, "", "create", "secret", "env", "METRIC_CANARY=metrics-canary-value")
	a.mustHush(user, "", "run", "-f", writeSpec(t, "counted", "busybox", "echo $METRIC_CANARY"))

	resp, err := http.Get("http://" + metricsAddr + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		`hush_secrets{type="env"} 1`,
		`hush_runs_ended_total{status="COMPLETED"} 1`,
		`hush_run_start_seconds_count 1`,
		`hush_runs{status="RUNNING"} 0`,
		`hush_http_requests_total{code="201",route="POST /v1/secrets"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the metrics lack %q", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^hush_store_commit_seconds_count (\d+)$`).FindStringSubmatch(body); m == nil || m[1] == "0" {
		t.Errorf("no store commits counted: %v", m)
	}
	if strings.Contains(body, "metrics-canary-value") || strings.Contains(body, user) {
		t.Error("the metrics hold a secret value or a token")
	}

	if code, body := a.request("GET", "/v1/metrics", a.token, ""); code != 200 || !strings.Contains(body, "hush_http_requests_total") {
		t.Errorf("metrics with the management token: %d", code)
	}
	if code, body := a.request("GET", "/v1/metrics", user, ""); code != 403 || !strings.Contains(body, "management tokens") {
		t.Errorf("metrics with a user's token: got %d %s, want 403", code, body)
	}
}
