package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testPlugin is the test plugin binary, built once by TestMain.
var testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hush-plugins-")
	if err != nil {
		panic(err)
	}
	testPlugin = filepath.Join(dir, "hush-provider-test")
	out, err := exec.Command("go", "build", "-o", testPlugin, "./internal/testplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	healthInterval, minBackoff = 100*time.Millisecond, 50*time.Millisecond
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// newHost loads an agent config and starts its plugins.
func newHost(t *testing.T, dev bool, hcl string) *Host {
	t.Helper()
	h := loadHost(t, dev, hcl)
	h.Start(context.Background())
	t.Cleanup(h.Shutdown)
	return h
}

// loadHost loads an agent config into a host, launching nothing.
func loadHost(t *testing.T, dev bool, hcl string) *Host {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(p, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.LoadFiles(p)
	if diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	h, err := New(cfg, dev, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func goodBlock(t *testing.T, name string) string {
	return fmt.Sprintf(`plugin %q {
  path   = %q
  sha256 = %q
  config { greeting = "hi" }
}
`, name, testPlugin, sum(t, testPlugin))
}

func statusOf(h *Host, name string) api.PluginStatus {
	for _, s := range h.Status() {
		if s.Name == name {
			return s
		}
	}
	return api.PluginStatus{}
}

func TestResolve(t *testing.T) {
	h := newHost(t, false, goodBlock(t, "test"))
	if s := statusOf(h, "test"); s.State != api.PluginRunning || s.Version != "1.2.3" || s.APIVersion != provider.APIVersion {
		t.Fatalf("got %+v, want running version 1.2.3", s)
	}
	res, err := h.Resolve(context.Background(), "test", []string{"abc", "missing", "xyz"})
	if err != nil {
		t.Fatal(err)
	}
	if string(res[0].Value) != "ABC" || string(res[2].Value) != "XYZ" || !errors.Is(res[1].Err, provider.ErrNotFound) {
		t.Errorf("got %+v", res)
	}
	if n := testutil.CollectAndCount(h.metrics.resolveSeconds, "hush_plugin_resolve_seconds"); n != 1 {
		t.Errorf("got %d resolve latency series, want 1 (plugin test)", n)
	}
	if got := testutil.ToFloat64(h.metrics.resolveErrors.WithLabelValues("test")); got != 0 {
		t.Errorf("got %v resolve errors, want 0: a missing reference is a result, not a failed resolve", got)
	}
	if _, err := h.Resolve(context.Background(), "nope", []string{"x"}); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("unknown provider: got %v", err)
	}
}

func TestPluginEnvironmentIsClean(t *testing.T) {
	t.Setenv("HUSH_AGENT_ONLY", "agent-environment-canary")
	h := newHost(t, false, goodBlock(t, "test"))
	res, err := h.Resolve(context.Background(), "test", []string{"env"})
	if err != nil {
		t.Fatal(err)
	}
	env := string(res[0].Value)
	if strings.Contains(env, "agent-environment-canary") || strings.Contains(env, "HOME=") {
		t.Errorf("the plugin sees the agent's environment:\n%s", env)
	}
}

func TestRestartAfterKill(t *testing.T) {
	h := newHost(t, false, goodBlock(t, "test"))
	pid := resolvePID(t, h)
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	var next int
	for time.Now().Before(deadline) {
		res, err := h.Resolve(context.Background(), "test", []string{"pid"})
		if err == nil {
			next, _ = strconv.Atoi(string(res[0].Value))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if next == 0 || next == pid {
		t.Fatalf("got pid %d after killing %d, want a new process", next, pid)
	}
	if s := statusOf(h, "test"); s.Restarts < 1 || s.State != api.PluginRunning {
		t.Errorf("got %+v, want running with a restart counted", s)
	}
	h.Shutdown()
	if syscall.Kill(next, 0) == nil {
		// Give the process a moment to be reaped.
		time.Sleep(500 * time.Millisecond)
		if syscall.Kill(next, 0) == nil {
			t.Errorf("plugin process %d still runs after Shutdown", next)
		}
	}
}

func resolvePID(t *testing.T, h *Host) int {
	t.Helper()
	res, err := h.Resolve(context.Background(), "test", []string{"pid"})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(res[0].Value))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestBrokenPluginsDoNotStopOthers(t *testing.T) {
	callTimeout = 2 * time.Second
	t.Cleanup(func() { callTimeout = 10 * time.Second })
	wrong := strings.Repeat("ab", 32)
	actual := sum(t, testPlugin)
	block := func(name, mode, sha string) string {
		return fmt.Sprintf("plugin %q {\n  path = %q\n  sha256 = %q\n  args = [\"-mode\", %q]\n  config { greeting = \"hi\" }\n}\n",
			name, testPlugin, sha, mode)
	}
	h := newHost(t, false, goodBlock(t, "good")+
		block("wrongsum", "good", wrong)+
		block("stdout", "stdout", actual)+
		block("hang", "hang", actual)+
		block("badconfig", "badconfig", actual)+
		block("oldapi", "oldapi", actual)+
		fmt.Sprintf("plugin \"missing\" {\n  path = %q\n  sha256 = %q\n}\n", filepath.Join(t.TempDir(), "nope"), actual)+
		fmt.Sprintf("plugin \"nosum\" {\n  path = %q\n}\n", testPlugin))

	tests := map[string][]string{
		"wrongsum":  {"checksum mismatch", actual, wrong},
		"stdout":    {"hello from a plugin that writes to stdout"},
		"hang":      {"timeout"},
		"badconfig": {"bad config: greeting: greeting is required"},
		"oldapi":    {"provider API versions [0]", "this agent speaks [1]"},
		"missing":   {"does not exist"},
		"nosum":     {"outside -dev every plugin needs its checksum", actual},
	}
	for name, wants := range tests {
		s := statusOf(h, name)
		if s.State != api.PluginFailed {
			t.Errorf("%s: state %s, want failed", name, s.State)
		}
		for _, w := range wants {
			if !strings.Contains(s.Error, w) {
				t.Errorf("%s: error %q lacks %q", name, s.Error, w)
			}
		}
	}
	if s := statusOf(h, "good"); s.State != api.PluginRunning {
		t.Errorf("good plugin: %+v", s)
	}
	if res, err := h.Resolve(context.Background(), "good", []string{"ok"}); err != nil || string(res[0].Value) != "OK" {
		t.Errorf("good plugin resolve: %v %v", res, err)
	}
	if _, err := h.Resolve(context.Background(), "badconfig", []string{"x"}); err == nil || !strings.Contains(err.Error(), `provider plugin "badconfig" is not running`) {
		t.Errorf("resolve from a broken plugin: got %v", err)
	}
}

func TestDevModeAndPluginDir(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile(testPlugin)
	if err := os.WriteFile(filepath.Join(dir, "hush-provider-test"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	// In dev mode a plugin found in plugin_dir needs no checksum; its config
	// block may still be given.
	h := newHost(t, true, fmt.Sprintf("plugin_dir = %q\nplugin \"test\" {\n  config { greeting = \"hi\" }\n}\n", dir))
	if s := statusOf(h, "test"); s.State != api.PluginRunning || s.Path != filepath.Join(dir, "hush-provider-test") {
		t.Errorf("got %+v", s)
	}
}
