// Command benchlist measures the memory an agent uses to list secrets: it
// starts `hush agent` on loopback, gives user alice many small secrets and
// user bob 1 MiB ones, restarts the agent so that its peak RSS counts only
// what follows, and reports the agent's RSS before, during (sampled, and
// VmHWM) and after concurrent `GET /v1/secrets`. .ci/bench-list runs it.
//
// Usage: go run ./.ci/benchlist -hush PATH/TO/hush [-small 20000] [-big 100] [-lists 8] [-rounds 3]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

func main() {
	hush := flag.String("hush", "", "the hush `BINARY` to measure")
	small := flag.Int("small", 20000, "small secrets for alice")
	big := flag.Int("big", 100, "1 MiB secrets for bob")
	lists := flag.Int("lists", 8, "concurrent lists")
	rounds := flag.Int("rounds", 3, "rounds of concurrent lists")
	flag.StringVar(&agentConfig, "config", "", "an agent config `FILE` to start the agent with")
	flag.Parse()
	if *hush == "" {
		fmt.Fprintln(os.Stderr, "usage: benchlist -hush PATH/TO/hush")
		os.Exit(2)
	}
	if err := run(*hush, *small, *big, *lists, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "benchlist:", err)
		os.Exit(1)
	}
}

func run(hush string, small, big, lists, rounds int) error {
	work, err := os.MkdirTemp("", "hush-benchlist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")

	a, err := start(hush, data)
	if err != nil {
		return err
	}
	alice, err := a.token("alice")
	if err == nil {
		var bob string
		if bob, err = a.token("bob"); err == nil {
			t0 := time.Now()
			err = create(a.addr, alice, small, 1, 16)
			if err == nil {
				err = create(a.addr, bob, big, api.MaxSecretSize, 4)
			}
			fmt.Printf("setup: %d small secrets for alice, %d of 1 MiB for bob in %s\n", small, big, time.Since(t0).Round(time.Second))
			if err == nil {
				a.stop()
				if err = measure(hush, data, "alice", alice, small, lists, rounds); err == nil {
					err = measure(hush, data, "bob", bob, big, lists, rounds)
				}
			}
		}
	}
	a.stop()
	return err
}

// measure restarts the agent and lists user's secrets, lists at a time,
// rounds times, sampling its RSS.
func measure(hush, data, user, token string, want, lists, rounds int) error {
	a, err := start(hush, data)
	if err != nil {
		return err
	}
	defer a.stop()
	time.Sleep(200 * time.Millisecond)
	before := a.status("VmRSS")
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if rss := a.status("VmRSS"); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	t0 := time.Now()
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, lists)
		for range lists {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- list(a.addr, token, want)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
	}
	elapsed := time.Since(t0)
	close(stop)
	<-sampled
	fmt.Printf("%-5s %6d secrets, %d x %d concurrent lists in %-8s RSS before %4d MB, peak sampled %4d MB, VmHWM %4d MB, after %4d MB\n",
		user, want, rounds, lists, elapsed.Round(time.Millisecond), before>>10, peak.Load()>>10, a.status("VmHWM")>>10, a.status("VmRSS")>>10)
	return nil
}

func list(addr, token string, want int) error {
	req, _ := http.NewRequest(http.MethodGet, addr+"/v1/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("list: %d %s", resp.StatusCode, b)
	}
	// Count names without holding the answer.
	dec := json.NewDecoder(resp.Body)
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if tok == "name" {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("list: got %d secrets, want %d", n, want)
	}
	return nil
}

// create makes n secrets of size bytes with workers at a time.
func create(addr, token string, n, size, workers int) error {
	c, err := api.NewClient(&api.Config{Address: addr, Token: token, HTTPClient: &http.Client{Timeout: 5 * time.Minute}})
	if err != nil {
		return err
	}
	value := []byte(strings.Repeat("v", size))
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := c.CreateSecret(context.Background(), &api.CreateSecretRequest{
					Name: fmt.Sprintf("bench-%06d", i), Type: api.TypeMounted, Data: map[string][]byte{api.FieldValue: value},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var firstErr error
	for i := 0; i < n && firstErr == nil; i++ {
		select {
		case next <- i:
		case firstErr = <-errs:
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && len(errs) > 0 {
		firstErr = <-errs
	}
	return firstErr
}

type agent struct {
	cmd  *exec.Cmd
	addr string
	root string
	done chan struct{}
}

// agentConfig is the -config file the agent starts with, if any: a root
// agent needs a runtime "exec" block with a uid_range since hush 0.2.
var agentConfig string

func start(hush, data string) (*agent, error) {
	args := []string{"agent", "-data-dir", data, "-bind", "127.0.0.1:0", "-log-json"}
	if agentConfig != "" {
		args = append(args, "-config", agentConfig)
	}
	cmd := exec.Command(hush, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	a := &agent{cmd: cmd, done: make(chan struct{})}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["@message"] == "agent started" {
				started <- line["addr"].(string)
			}
		}
		cmd.Wait()
		close(a.done)
	}()
	select {
	case a.addr = <-started:
	case <-a.done:
		return nil, fmt.Errorf("agent exited at start-up")
	case <-time.After(60 * time.Second):
		a.stop()
		return nil, fmt.Errorf("agent did not start")
	}
	b, err := os.ReadFile(filepath.Join(data, "root.token"))
	if err != nil {
		a.stop()
		return nil, err
	}
	a.root = strings.TrimSpace(string(b))
	return a, nil
}

func (a *agent) token(user string) (string, error) {
	c, err := api.NewClient(&api.Config{Address: a.addr, Token: a.root})
	if err != nil {
		return "", err
	}
	tok, err := c.CreateToken(context.Background(), &api.CreateTokenRequest{User: user})
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
