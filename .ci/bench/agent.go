package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// agent is a running `hush agent` process.
type agent struct {
	cmd  *exec.Cmd
	addr string
	root string // its root token
	done chan struct{}
	// started gets the address it serves at, once it does; log holds
	// what it said before.
	started chan string
	logMu   sync.Mutex
	log     strings.Builder
}

// startAgent starts hush's agent on a free loopback port with its data in
// data, and the config file config when it is not "", and returns it once
// it serves. The config matters to a root agent, which since hush 0.2
// starts only with a runtime "exec" block that says which users runs
// execute as.
func startAgent(hush, data, config string) (*agent, error) {
	// A bench asks as fast as it can: the per-token rate limit is off.
	unlimited := filepath.Join(filepath.Dir(data), "unlimited.hcl")
	if err := os.WriteFile(unlimited, []byte("http {\n  rate_limit = 0\n}\n"), 0o600); err != nil {
		return nil, err
	}
	a, err := startAgentWith(hush, data, config, unlimited)
	if err != nil && strings.Contains(err.Error(), `Unsupported block type`) {
		// A hush from before the http block has no rate limit.
		os.RemoveAll(data)
		return startAgentWith(hush, data, config, "")
	}
	return a, err
}

func startAgentWith(hush, data string, configs ...string) (*agent, error) {
	args := []string{"agent", "-data-dir", data, "-bind", "127.0.0.1:0", "-log-json"}
	for _, config := range configs {
		if config != "" {
			args = append(args, "-config", config)
		}
	}
	a, err := launch(hush, args)
	if err != nil {
		return nil, err
	}
	if err := a.wait(2 * time.Minute); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(data, "root.token"))
	if err != nil {
		a.stop()
		return nil, err
	}
	a.root = strings.TrimSpace(string(b))
	return a, nil
}

// launch starts `hush args...`, with env added to its environment, and
// returns without waiting for it to serve: wait does. Servers of one
// cluster start together, since each serves only once they have formed
// it.
func launch(hush string, args []string, env ...string) (*agent, error) {
	cmd := exec.Command(hush, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	a := &agent{cmd: cmd, done: make(chan struct{}), started: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["@message"] == "agent started" {
				a.started <- line["addr"].(string)
				break
			}
			a.logMu.Lock()
			if a.log.Len() < 4096 {
				a.log.WriteString(sc.Text() + "\n")
			}
			a.logMu.Unlock()
		}
		// What it logs while measured is drained unread: parsing a line
		// per request would take CPU from the agent being measured.
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(a.done)
	}()
	return a, nil
}

// wait waits until the agent serves, for at most within, and sets its
// address.
func (a *agent) wait(within time.Duration) error {
	select {
	case a.addr = <-a.started:
		return nil
	case <-a.done:
		return fmt.Errorf("agent exited at start-up:\n%s", a.startLog())
	case <-time.After(within):
		a.stop()
		return fmt.Errorf("agent did not start within %s:\n%s", within, a.startLog())
	}
}

// startLog is what the agent said before it started, for a failure.
func (a *agent) startLog() string {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.log.String()
}

// client returns a client of the agent with token, over transport (nil:
// Go's default).
func (a *agent) client(token string, transport http.RoundTripper) *api.Client {
	c, _ := api.NewClient(&api.Config{Address: a.addr, Token: token, HTTPClient: &http.Client{Transport: transport, Timeout: 5 * time.Minute}})
	return c
}

// token creates a token for user with the root token.
func (a *agent) token(user string) (string, error) {
	tok, err := a.client(a.root, nil).CreateToken(context.Background(), &api.CreateTokenRequest{User: user})
	if err != nil {
		return "", err
	}
	return tok.Secret, nil
}

// status reads a field of /proc/PID/status, in kB.
func (a *agent) status(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// stop ends the agent with SIGTERM, or SIGKILL if it takes too long.
func (a *agent) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
}
