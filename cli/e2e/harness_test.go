// Package e2e tests the real hush binary: it builds it once, starts real
// agent processes on loopback ports, and drives them with the real CLI.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hushBin is the binary under test, built by TestMain.
var hushBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hush-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hushBin = filepath.Join(dir, "hush")
	build := exec.Command("go", "build", "-o", hushBin, "github.com/hush-sh/hush")
	// Static, as `make build` makes it: it is the entrypoint inside images.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hush:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agent is a running `hush agent` process.
type agent struct {
	t       *testing.T
	cmd     *exec.Cmd
	dataDir string
	addr    string
	token   string // the root token
	stdout  *syncBuffer
	stderr  *syncBuffer
	exited  chan struct{}
	// started gets the address the agent serves at, once it does.
	started chan string
	// shared says the agent is a server of a cluster whose root token
	// only the server that made it holds in its data dir.
	shared bool
}

// agentSeq numbers the agents this process starts, for their uid ranges.
var agentSeq atomic.Int32

// execRuntime is a runtime "exec" block that, as root, runs each run as a
// uid of its own, from a range of its own: an agent kills what is left of
// its range's processes when it starts and when each run ends. The range
// follows from the test process's pid and the agent's number, so that
// agents of one process never share one, and those of two processes run
// side by side are unlikely to. A non-root agent cannot switch users and
// gets no range. attrs are added to the block.
func execRuntime(attrs ...string) string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("runtime \"exec\" {\n  %s\n}\n", strings.Join(attrs, "\n  "))
	}
	first := 100_000_000 + (os.Getpid()%30_000)*100_000 + int(agentSeq.Add(1)%2000)*50
	return fmt.Sprintf("runtime \"exec\" {\n  uid_range = \"%d-%d\"\n  %s\n}\n", first, first+49, strings.Join(attrs, "\n  "))
}

// startAgent starts an agent on a free loopback port with its data in
// dataDir, or in dev mode when dataDir is empty, and waits until it serves.
// Its runs on the exec runtime are isolated (execRuntime) unless args
// give a config file with a runtime "exec" block of its own, and it stops
// its runs when it stops unless they set leave_runs_on_shutdown.
func startAgent(t *testing.T, dataDir string, args ...string) *agent {
	t.Helper()
	a := launchAgent(t, dataDir, args...)
	a.waitStarted(20 * time.Second)
	return a
}

// launchAgent starts an agent process, as startAgent does, without
// waiting for it to serve: waitStarted does.
func launchAgent(t *testing.T, dataDir string, args ...string) *agent {
	t.Helper()
	a := &agent{t: t, dataDir: dataDir, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{}), started: make(chan string, 1)}
	// First, so that the test's own config files win. A test's agent
	// stops its runs when it stops, so that no test leaves workloads
	// behind; the tests of runs that outlive the agent say otherwise.
	// Each has a state dir of its own, as agents side by side must.
	harnessDir := t.TempDir()
	harnessCfg := writeFile(t, harnessDir, "harness.hcl", fmt.Sprintf("state_dir = %q\nleave_runs_on_shutdown = false\n%s",
		filepath.Join(harnessDir, "state"), execRuntime()))
	argv := append([]string{"agent", "-bind", "127.0.0.1:0", "-log-json", "-config", harnessCfg}, args...)
	if dataDir == "" {
		argv = append(argv, "-dev")
	} else {
		argv = append(argv, "-data-dir", dataDir)
	}
	a.cmd = exec.Command(hushBin, argv...)
	a.cmd.Env = cleanEnv()
	a.cmd.Stdout = a.stdout
	pr, pw := io.Pipe()
	a.cmd.Stderr = io.MultiWriter(a.stderr, pw)
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.cmd.Wait(); pw.Close(); close(a.exited) }()
	t.Cleanup(func() { a.stop() })

	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["@message"] == "agent started" {
				a.started <- line["addr"].(string)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return a
}

// waitStarted waits until the agent serves, and reads its root token.
func (a *agent) waitStarted(within time.Duration) {
	t, dataDir := a.t, a.dataDir
	t.Helper()
	select {
	case a.addr = <-a.started:
	case <-a.exited:
		t.Fatalf("agent exited at start-up:\n%s", a.stderr)
	case <-time.After(within):
		t.Fatalf("agent did not start within %s:\n%s", within, a.stderr)
	}
	if dataDir == "" {
		// Stdout and stderr travel through separate pipes: the banner may
		// arrive just after the log line.
		for i := 0; i < 100 && !strings.Contains(a.stdout.String(), "export HUSH_TOKEN="); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		a.token = bannerValue(t, a.stdout.String(), "export HUSH_TOKEN=")
	} else {
		b, err := os.ReadFile(filepath.Join(dataDir, "root.token"))
		if err != nil && !(a.shared && errors.Is(err, os.ErrNotExist)) {
			t.Fatalf("read root token: %v", err)
		}
		a.token = strings.TrimSpace(string(b))
	}
}

func bannerValue(t *testing.T, banner, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(banner, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return v
		}
	}
	t.Fatalf("banner has no %q line:\n%s", prefix, banner)
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (a *agent) stop() {
	a.t.Helper()
	select {
	case <-a.exited:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		a.t.Errorf("agent did not stop within 15s of SIGTERM")
		<-a.exited
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		a.t.Errorf("agent exited %d after SIGTERM, want 0:\n%s", code, a.stderr)
	}
}

// result is what one CLI invocation did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// hush runs the CLI against a with token, feeding it stdin.
func (a *agent) hush(token, stdin string, args ...string) result {
	a.t.Helper()
	return runHush(a.t, []string{"HUSH_ADDR=" + a.addr, "HUSH_TOKEN=" + token}, stdin, args...)
}

// runHush runs the CLI with env added to the test's clean environment.
func runHush(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(hushBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run hush: %v", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// mustHush runs the CLI and fails the test unless it succeeds.
func (a *agent) mustHush(token, stdin string, args ...string) result {
	a.t.Helper()
	r := a.hush(token, stdin, args...)
	if r.code != 0 {
		a.t.Fatalf("hush %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// newUser creates a token for user with the root token.
func (a *agent) newUser(user string) string {
	a.t.Helper()
	return strings.TrimSpace(a.mustHush(a.token, "", "acl", "token", "create", "--user", user, "-q").stdout)
}

// request sends a raw API request.
func (a *agent) request(method, path, token, body string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.addr+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// secretIDs lists user's secrets as name → id, straight from the API.
func (a *agent) secretIDs(token string) map[string]string {
	a.t.Helper()
	code, body := a.request("GET", "/v1/secrets", token, "")
	if code != 200 {
		a.t.Fatalf("list secrets: %d %s", code, body)
	}
	var out struct {
		Secrets []struct{ ID, Name string }
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		a.t.Fatal(err)
	}
	ids := map[string]string{}
	for _, s := range out.Secrets {
		ids[s.Name] = s.ID
	}
	return ids
}

// cleanEnv is the test's environment without HUSH_* variables, so that a
// developer's own settings cannot leak into the tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUSH_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
	}
	return env
}

// grepTree returns the files under dir that contain needle.
func grepTree(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		// Other tests' containers come and go under a shared containerd
		// root while this walks it.
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
