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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
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
	h, err := New(loadConfig(t, hcl), dev, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// loadConfig loads an agent config, as the agent reads it at start and on SIGHUP.
func loadConfig(t *testing.T, hcl string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(p, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.LoadFiles(p)
	if diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	return cfg
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
		"badconfig": {"bad config: /", "agent.hcl:28:12: greeting: greeting is required"},
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

func TestResolveTimeout(t *testing.T) {
	h := newHost(t, false, fmt.Sprintf("plugin \"test\" {\n  path = %q\n  sha256 = %q\n  timeout = \"1s\"\n  config { greeting = \"hi\" }\n}\n",
		testPlugin, sum(t, testPlugin)))
	errc := make(chan error, 1)
	go func() {
		_, err := h.Resolve(context.Background(), "test", []string{"sleep"})
		errc <- err
	}()
	select {
	case err := <-errc:
		for _, want := range []string{`provider plugin "test" did not answer within 1s`, "raise timeout in its plugin block"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got error %v, want one with %q", err, want)
			}
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Resolve still waits after 15s; the plugin's timeout is 1s")
	}
	// The plugin outlives a call that timed out.
	if res, err := h.Resolve(context.Background(), "test", []string{"ok"}); err != nil || string(res[0].Value) != "OK" {
		t.Errorf("resolve after a timeout: got %v %v, want OK", res, err)
	}
}

func TestPermanentFailuresAreNotRetried(t *testing.T) {
	actual := sum(t, testPlugin)
	block := func(name, mode, sha string) string {
		return fmt.Sprintf("plugin %q {\n  path = %q\n  sha256 = %q\n  args = [\"-mode\", %q]\n  config { greeting = \"hi\" }\n}\n",
			name, testPlugin, sha, mode)
	}
	h := newHost(t, false, block("wrongsum", "good", strings.Repeat("ab", 32))+
		block("badconfig", "badconfig", actual)+
		block("oldapi", "oldapi", actual)+
		fmt.Sprintf("plugin \"nosum\" {\n  path = %q\n}\n", testPlugin)+
		fmt.Sprintf("plugin \"missing\" {\n  path = %q\n  sha256 = %q\n}\n", filepath.Join(t.TempDir(), "nope"), actual))

	// A transient failure is retried with backoff; by the time it has been
	// retried twice, the watchers have had their chances to retry the rest.
	deadline := time.Now().Add(10 * time.Second)
	for statusOf(h, "missing").Restarts < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("missing plugin: got %+v, want it retried at least twice within 10s", statusOf(h, "missing"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := statusOf(h, "missing"); strings.Contains(s.Error, "send the agent SIGHUP") {
		t.Errorf("missing plugin: error %q says it is permanent; installing the file fixes it", s.Error)
	}
	for _, name := range []string{"wrongsum", "badconfig", "oldapi", "nosum"} {
		// A run that needs the plugin does not relaunch it either.
		if _, err := h.Resolve(context.Background(), name, []string{"x"}); err == nil || !strings.Contains(err.Error(), "send the agent SIGHUP") {
			t.Errorf("%s: resolve got %v, want an error that says to send SIGHUP", name, err)
		}
		s := statusOf(h, name)
		if s.State != api.PluginFailed || s.Restarts != 0 {
			t.Errorf("%s: got state %s with %d restarts, want failed with 0", name, s.State, s.Restarts)
		}
		if want := "fix the plugin block (or the plugin), then send the agent SIGHUP"; !strings.Contains(s.Error, want) {
			t.Errorf("%s: error %q lacks %q", name, s.Error, want)
		}
	}
}

func TestStatusDuringSlowLaunch(t *testing.T) {
	callTimeout = 5 * time.Second
	t.Cleanup(func() { callTimeout = 10 * time.Second })
	started := filepath.Join(t.TempDir(), "started")
	h := loadHost(t, false, fmt.Sprintf("plugin \"slow\" {\n  path = %q\n  sha256 = %q\n  args = [\"-mode\", \"hang\", \"-started\", %q]\n}\n",
		testPlugin, sum(t, testPlugin), started))
	t.Cleanup(h.Shutdown)

	launched := make(chan struct{})
	go func() {
		defer close(launched)
		h.plugins["slow"].launch(context.Background())
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow plugin's process did not start within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The process runs and never answers its handshake: the launch lasts
	// callTimeout. Status must not wait for it.
	statuses := make(chan []api.PluginStatus, 1)
	go func() { statuses <- h.Status() }()
	select {
	case st := <-statuses:
		if len(st) != 1 || st[0].State != api.PluginStarting {
			t.Errorf("got %+v, want the slow plugin starting", st)
		}
	case <-launched:
		t.Fatal("Status waited for the plugin's launch to end")
	}
	select {
	case <-launched:
	case <-time.After(20 * time.Second):
		t.Fatal("the launch did not end within 20s; its start timeout is 5s")
	}
	if s := statusOf(h, "slow"); s.State != api.PluginFailed || !strings.Contains(s.Error, "timeout") {
		t.Errorf("after the launch: got %+v, want failed with a timeout", s)
	}
}

func pidOf(t *testing.T, h *Host, name string) int {
	t.Helper()
	res, err := h.Resolve(context.Background(), name, []string{"pid"})
	if err != nil {
		t.Fatalf("resolve pid of %s: %v", name, err)
	}
	pid, _ := strconv.Atoi(string(res[0].Value))
	return pid
}

// Reload keeps an unchanged plugin's process, launches a changed one
// again (which gives one that failed for good another try), stops a
// removed one and launches a new one; a block moved in its file, with the
// same meaning, is unchanged.
func TestReload(t *testing.T) {
	bad := fmt.Sprintf("plugin \"fixme\" {\n  path   = %q\n  sha256 = %q\n}\n", testPlugin, strings.Repeat("0", 64))
	h := newHost(t, false, goodBlock(t, "keep")+goodBlock(t, "change")+goodBlock(t, "drop")+bad)
	keep, change, drop := pidOf(t, h, "keep"), pidOf(t, h, "change"), pidOf(t, h, "drop")
	if s := statusOf(h, "fixme"); s.State != api.PluginFailed {
		t.Fatalf("fixme with a wrong checksum: got %+v, want failed", s)
	}

	changed := strings.Replace(goodBlock(t, "change"), `greeting = "hi"`, `greeting = "hello"`, 1)
	fixed := goodBlock(t, "fixme")
	cfg := loadConfig(t, "# moved down a line\n"+goodBlock(t, "keep")+changed+fixed+goodBlock(t, "new"))
	added, chg, removed, err := h.Reload(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added, []string{"new"}) || !slices.Equal(chg, []string{"change", "fixme"}) || !slices.Equal(removed, []string{"drop"}) {
		t.Errorf("reload: added %v, changed %v, removed %v; want [new], [change fixme], [drop]", added, chg, removed)
	}
	if got := pidOf(t, h, "keep"); got != keep {
		t.Errorf("the unchanged plugin's process: %d, then %d; want the same", keep, got)
	}
	if got := pidOf(t, h, "change"); got == change {
		t.Errorf("the changed plugin still runs as process %d", got)
	}
	for _, name := range []string{"fixme", "new"} {
		if s := statusOf(h, name); s.State != api.PluginRunning {
			t.Errorf("%s after the reload: got %+v, want running", name, s)
		}
	}
	if _, err := h.Resolve(context.Background(), "drop", []string{"x"}); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("the removed plugin: got %v, want ErrUnknownProvider", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(drop, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(drop, 0) == nil {
		t.Errorf("the removed plugin's process %d still runs", drop)
	}
	if syscall.Kill(change, 0) == nil {
		time.Sleep(500 * time.Millisecond)
		if syscall.Kill(change, 0) == nil {
			t.Errorf("the changed plugin's old process %d still runs", change)
		}
	}
}

// What a plugin writes to stderr that is not a log line reaches the
// agent's log at INFO, under the plugin's name: before it serves, and
// while it serves (go-plugin then carries its stderr over gRPC).
func TestPlainStderrIsLogged(t *testing.T) {
	var out providertest.Log
	block := fmt.Sprintf("plugin \"chatty\" {\n  path = %q\n  sha256 = %q\n  args = [\"-mode\", \"chatty\"]\n  config { greeting = \"hi\" }\n}\n", testPlugin, sum(t, testPlugin))
	h, err := New(loadConfig(t, block), false, hclog.New(&hclog.LoggerOptions{Name: "plugins", Level: hclog.Info, Output: &out}))
	if err != nil {
		t.Fatal(err)
	}
	h.Start(context.Background())
	t.Cleanup(h.Shutdown)
	if _, err := h.Resolve(context.Background(), "chatty", []string{"say"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, want := range []string{"said on stderr before serving", "said on stderr while resolving"} {
		for !strings.Contains(out.String(), want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !regexp.MustCompile(`\[INFO\]\s+plugins\.chatty\.stderr: ` + regexp.QuoteMeta(want)).MatchString(out.String()) {
			t.Errorf("the log lacks %q at INFO under plugins.chatty:\n%s", want, out.String())
		}
	}
}
