package providertest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

// TestMain makes the test binary a plugin when a host launches it, which
// go-plugin's magic cookie tells, so that LaunchProcess has a real
// process to launch.
func TestMain(m *testing.M) {
	if os.Getenv(provider.Handshake.MagicCookieKey) != "" {
		f := factory("")
		if err := provider.Serve(func(hclog.Logger) provider.Provider { return f() }); err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// selfPlugin is a command that runs this test binary as a plugin.
func selfPlugin(t *testing.T) func() *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func() *exec.Cmd { return exec.Command(self) }
}

// TestRunProcessConformance runs the whole suite against providers that
// each live in a plugin process of their own, launched as the agent does.
func TestRunProcessConformance(t *testing.T) {
	providertest.RunProcessConformance(t, selfPlugin(t), suite)
}

// TestLaunchClientLog checks that the host's log carries the plugin's
// stderr, which is where a failing test shows why a plugin misbehaved.
func TestLaunchClientLog(t *testing.T) {
	client, logs := providertest.LaunchClient(t, selfPlugin(t)())
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: got error %v, want none", err)
	}
	if err := rpc.Ping(); err != nil {
		t.Errorf("Ping: got error %v, want none", err)
	}
	client.Kill()
	if got := logs.String(); !strings.Contains(got, `"plugin started"`) {
		t.Errorf("host log: got %q, want a line saying the plugin started", got)
	}
}
