package providertest

import (
	"bytes"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/hush-sh/hush/sdk/provider"
)

// startTimeout bounds a plugin's start, up to its handshake line: a plugin
// that never prints one fails the test instead of stalling it.
const startTimeout = 30 * time.Second

// LaunchProcess starts cmd as a plugin process the way the hush agent
// does (go-plugin over gRPC only, AutoMTLS, an environment of cmd.Env and
// go-plugin's variables alone) and returns the host's side of it, which is
// also a provider.Storer. It works for a plugin written in any language,
// so RunConformance can check one through a factory that calls it:
//
//	providertest.RunConformance(t, func() provider.Provider {
//		return providertest.LaunchProcess(t, exec.Command("/path/to/plugin"))
//	}, suite)
//
// The process is killed when the test ends, and its log lines (stderr)
// are shown if the test failed.
func LaunchProcess(t testing.TB, cmd *exec.Cmd) provider.Provider {
	t.Helper()
	client, logs := LaunchClient(t, cmd)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin %s: %v\nits log:\n%s", cmd.Path, err, logs)
	}
	raw, err := rpc.Dispense(provider.PluginName)
	if err != nil {
		t.Fatalf("dispense provider from %s: %v", cmd.Path, err)
	}
	p, ok := raw.(provider.Provider)
	if !ok {
		t.Fatalf("dispense provider from %s: got %T, want a provider.Provider", cmd.Path, raw)
	}
	return p
}

// LaunchClient is LaunchProcess's first half, for a test that needs
// go-plugin's client itself: to Ping the plugin, read its address, or kill
// it. It returns the client, not yet started (client.Client() starts it),
// and the host's log, in which the plugin's stderr lines appear re-emitted
// as the agent re-emits them.
func LaunchClient(t testing.TB, cmd *exec.Cmd) (*plugin.Client, *Log) {
	t.Helper()
	logs := &Log{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  provider.Handshake,
		Plugins:          provider.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     startTimeout,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "host",
			Level:      hclog.Trace,
			Output:     logs,
			JSONFormat: true,
		}),
	})
	t.Cleanup(func() {
		client.Kill()
		if t.Failed() {
			t.Logf("log of plugin %s:\n%s", cmd.Path, logs)
		}
	})
	return client, logs
}

// Log collects a host's log lines. It is safe for concurrent use, and to
// write to after the test has ended, which go-plugin may do while it
// drains a dying plugin's stderr.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the log.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns the log so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
