//go:build unix

package provider_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/internal/memprovider"
)

// testPlugin is the path of internal/testplugin, built by TestMain.
var testPlugin string

// hostEnv makes the test binary act as a host that launches the plugin at
// the path it holds, prints the plugin's pid, and waits to be killed.
const hostEnv = "HUSH_PROVIDER_TEST_HOST"

func TestMain(m *testing.M) {
	if path := os.Getenv(hostEnv); path != "" {
		runHost(path)
		return
	}
	dir, err := os.MkdirTemp("", "hush-provider-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "make temp dir: %v\n", err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, "hush-provider-memory")
	if out, err := exec.Command("go", "build", "-o", testPlugin, "./internal/testplugin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// clientConfig is how the agent launches a plugin, less the checksum.
func clientConfig(path string, stderr io.Writer) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  provider.Handshake,
		Plugins:          provider.PluginSet(nil),
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		Logger:           hclog.NewNullLogger(),
		Stderr:           stderr,
	}
}

func dispense(client *plugin.Client) (provider.Provider, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("start plugin: %w", err)
	}
	raw, err := rpc.Dispense(provider.PluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense: %w", err)
	}
	p, ok := raw.(provider.Provider)
	if !ok {
		return nil, fmt.Errorf("dispense: got %T, want a provider.Provider", raw)
	}
	return p, nil
}

func runHost(path string) {
	client := plugin.NewClient(clientConfig(path, io.Discard))
	p, err := dispense(client)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = p.GetInfo(ctx, &provider.GetInfoRequest{})
		cancel()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		client.Kill()
		os.Exit(1)
	}
	fmt.Println(client.ReattachConfig().Pid)
	time.Sleep(time.Hour) // until the test kills us
	os.Exit(1)
}

// lines collects the lines of a plugin's stderr.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.FieldsFunc(l.buf.String(), func(r rune) bool { return r == '\n' })
}

func TestServeProcess(t *testing.T) {
	stderr := &lines{}
	client := plugin.NewClient(clientConfig(testPlugin, stderr))
	t.Cleanup(client.Kill)
	p, err := dispense(client)
	if err != nil {
		t.Fatal(err)
	}

	info, err := p.GetInfo(t.Context(), &provider.GetInfoRequest{})
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.Name != "memory" {
		t.Errorf("GetInfo: got name %q, want %q", info.Name, "memory")
	}
	resp, err := p.Configure(t.Context(), &provider.ConfigureRequest{
		APIVersion: provider.APIVersion,
		Config:     []byte(`{"values": {"a": "1"}, "denied": ["b"]}`),
	})
	if err != nil || resp.HasErrors() {
		t.Fatalf("Configure: got %v and %+v, want no error", err, resp)
	}

	s := p.(provider.Storer)
	if _, err := s.Put(t.Context(), &provider.PutRequest{Reference: "c", Value: []byte("3")}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := s.Delete(t.Context(), &provider.DeleteRequest{Reference: "zzz"}); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("Delete of a missing reference: got error %v, want one matching %q", err, provider.ErrNotFound)
	}
	res, err := p.Resolve(t.Context(), &provider.ResolveRequest{References: []string{"a", "b", "c", "d"}})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if r := res.Results; len(r) != 4 || string(r[0].Value) != "1" || !errors.Is(r[1].Err, provider.ErrPermissionDenied) ||
		string(r[2].Value) != "3" || !errors.Is(r[3].Err, provider.ErrNotFound) {
		t.Errorf("Resolve a, b, c, d: got %+v, want 1, permission denied, 3, not found", r)
	}

	pid := client.ReattachConfig().Pid
	client.Kill()
	if !client.Exited() {
		t.Error("after Kill: got a plugin that has not exited, want it gone")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("after Kill: signalling pid %d: got %v, want %v", pid, err, syscall.ESRCH)
	}

	// Both go-plugin's logger, which Serve makes, and the one the factory
	// makes must reach the host as JSON.
	served := false
	for _, line := range stderr.lines() {
		var entry struct {
			Message string `json:"@message"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("plugin stderr: got line %q, want JSON", line)
		}
		served = served || entry.Message == "serving"
	}
	if !served {
		t.Errorf("plugin stderr: got %q, want a line logged by the factory", stderr.lines())
	}
}

// TestServeExitsWithHost kills a host with SIGKILL, which leaves it no
// chance to stop its plugin, and checks that the plugin notices and exits.
func TestServeExitsWithHost(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host := exec.Command(self, "-test.run=^$")
	host.Env = append(os.Environ(), hostEnv+"="+testPlugin)
	host.Stderr = os.Stderr
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatalf("start host: %v", err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })

	pidc := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			pid, _ := strconv.Atoi(strings.TrimSpace(sc.Text()))
			pidc <- pid
		}
		close(pidc)
	}()
	var pid int
	select {
	case pid = <-pidc:
	case <-time.After(30 * time.Second):
		t.Fatal("host: got no plugin pid after 30s, want one")
	}
	if pid <= 0 {
		t.Fatal("host: exited without a plugin pid, want one (see its stderr above)")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !alive(pid) {
		t.Fatalf("plugin %d: got it gone before the host died, want it running", pid)
	}

	if err := host.Process.Kill(); err != nil {
		t.Fatalf("kill host: %v", err)
	}
	_ = host.Wait()
	for deadline := time.Now().Add(10 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d: still running 10s after its host was killed, want it gone", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid runs. A zombie has exited: it only waits for
// a parent to reap it, which an orphan's new parent may never do.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// TestServeProcessRecoversPanic makes a real plugin panic in Resolve, after
// it has read a value, and checks that the call fails with the panic's text
// and no value, that the stack reaches the host as a JSON log line, and that
// the same process answers the next call.
func TestServeProcessRecoversPanic(t *testing.T) {
	const value = "hunter2-process-value"
	stderr := &lines{}
	client := plugin.NewClient(clientConfig(testPlugin, stderr))
	t.Cleanup(client.Kill)
	p, err := dispense(client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Configure(t.Context(), &provider.ConfigureRequest{
		APIVersion: provider.APIVersion,
		Config:     []byte(`{"values": {"a": "` + value + `"}}`),
	}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	pid := client.ReattachConfig().Pid

	_, err = p.Resolve(t.Context(), &provider.ResolveRequest{References: []string{"a", "panic"}})
	if want := "provider panicked in Resolve: test plugin asked to panic"; err == nil || err.Error() != want {
		t.Fatalf("Resolve of a panicking reference: got error %v, want %q", err, want)
	}
	res, err := p.Resolve(t.Context(), &provider.ResolveRequest{References: []string{"a"}})
	if err != nil || len(res.Results) != 1 || string(res.Results[0].Value) != value {
		t.Fatalf("Resolve after a panic: got %+v and error %v, want value %q", res, err, value)
	}
	if got := client.ReattachConfig().Pid; got != pid || client.Exited() {
		t.Errorf("after a panic: got plugin pid %d (exited %v), want pid %d still serving", got, client.Exited(), pid)
	}

	client.Kill()
	logged := false
	for _, line := range stderr.lines() {
		if strings.Contains(line, value) {
			t.Errorf("plugin stderr: got line %q, want no value in it", line)
		}
		var entry struct {
			Message string `json:"@message"`
			Method  string `json:"method"`
			Panic   string `json:"panic"`
			Stack   string `json:"stack"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("plugin stderr: got line %q, want JSON", line)
			continue
		}
		if entry.Message == "provider panicked" {
			logged = true
			if entry.Method != "Resolve" || entry.Panic != "test plugin asked to panic" || !strings.Contains(entry.Stack, "main.panicky.Resolve") {
				t.Errorf("plugin stderr: got panic line %q, want method Resolve, the panic text and a stack through main.panicky.Resolve", line)
			}
		}
	}
	if !logged {
		t.Errorf("plugin stderr: got %q, want a \"provider panicked\" line", stderr.lines())
	}
}

// A plugin run by hand, not by the agent, says so and exits 1, instead of
// go-plugin's own message.
func TestServeRefusesWhenNotLaunched(t *testing.T) {
	cmd := exec.Command(testPlugin)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "the hush agent launches it") {
		t.Errorf("a plugin run by hand: got %v, %q; want exit 1 saying the agent launches it", err, out)
	}
}

// WithReattach serves a plugin that runs on its own, which a host reaches
// through the ReattachConfig it sends, until its context ends.
func TestServeWithReattach(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	served := make(chan error, 1)
	go func() {
		served <- provider.Serve(func(hclog.Logger) provider.Provider { return memprovider.New() }, provider.WithReattach(ctx, reattach), provider.WithMaxMessageSize(8<<20))
	}()
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-time.After(10 * time.Second):
		t.Fatal("no reattach config within 10s")
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: provider.Handshake, Plugins: provider.PluginSet(nil), Reattach: rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, Logger: hclog.NewNullLogger(),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(provider.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := raw.(provider.Provider).GetInfo(ctx, &provider.GetInfoRequest{})
	if err != nil || info.Name == "" {
		t.Fatalf("GetInfo over the reattached plugin: got %+v, %v", info, err)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v, want nil once its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return within 10s of its context ending")
	}
}
