package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startAgentWithFiles starts an agent whose open-file limit is soft:hard,
// as `ulimit -n` or systemd's LimitNOFILE would set it, through a shell
// that sets the limit and then becomes the agent.
func startAgentWithFiles(t *testing.T, soft, hard uint64, args ...string) *agent {
	t.Helper()
	wrapper := writeFile(t, t.TempDir(), "hush-limited",
		fmt.Sprintf("#!/bin/sh\nulimit -Sn %d && ulimit -Hn %d && exec %s \"$@\"\n", soft, hard, hushBin))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	real := hushBin
	hushBin = wrapper
	defer func() { hushBin = real }()
	return startAgent(t, "", args...)
}

// openFileLimits reads the soft and hard open-file limits of pid.
func openFileLimits(t *testing.T, pid int) (soft, hard string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(strings.TrimPrefix(line, "Max open files")); len(f) >= 2 && strings.HasPrefix(line, "Max open files") {
			return f[0], f[1]
		}
	}
	t.Fatalf("no open-file limit in /proc/%d/limits", pid)
	return "", ""
}

// slowBodies opens n connections that each send a request's headers with
// token and then its body at a byte every 2s, as a client on a bad link
// or an attacker does. It returns once all are open, with a channel that
// gets, for each, how long after the start the agent cut it.
func slowBodies(t *testing.T, addr, token string, n int) <-chan time.Duration {
	t.Helper()
	host := strings.TrimPrefix(addr, "http://")
	start := time.Now()
	cut := make(chan time.Duration, n)
	var opened sync.WaitGroup
	for range n {
		opened.Add(1)
		go func() {
			c, err := net.Dial("tcp", host)
			if err != nil {
				opened.Done()
				t.Error(err)
				cut <- 0
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /v1/secrets HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", host, token)
			opened.Done()
			buf := make([]byte, 512)
			for {
				if _, err := c.Write([]byte(" ")); err != nil {
					break
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err := c.Read(buf)
				var ne net.Error
				if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
					break // an answer, or the agent hung up
				}
			}
			cut <- time.Since(start)
		}()
	}
	opened.Wait()
	return cut
}

// timedList lists secrets and says how long the agent took to answer.
func timedList(t *testing.T, a *agent, token string, bound time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.addr+"/v1/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a normal request got no answer within %v: %v", bound, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a normal request: got %d, want 200", resp.StatusCode)
	}
	return time.Since(start)
}

// TestSlowBodiesCut: under a 300-descriptor limit, slow bodies with a
// valid token neither lock other clients out nor stay: the agent raises
// its soft open-file limit to the hard one, caps its connections to fit,
// answers a normal request among 200 slow ones at once, cuts them all
// within read_timeout, and outlasts 300 of them, more than it serves at
// once, without running out of descriptors.
func TestSlowBodiesCut(t *testing.T) {
	const readTimeout = 5 * time.Second
	cfg := writeFile(t, t.TempDir(), "http.hcl", fmt.Sprintf("http {\n  read_timeout = %q\n}\n", readTimeout))
	a := startAgentWithFiles(t, 256, 300, "-config", cfg)
	// Go (1.19 and later) raises the soft limit at start, to one below
	// the hard since Go 1.26, to notice a later prlimit.
	if soft, hard := openFileLimits(t, a.cmd.Process.Pid); (soft != "299" && soft != "300") || hard != "300" {
		t.Errorf("agent's open-file limit: got %s soft, %s hard; want the soft limit of 256 raised to the hard, 300", soft, hard)
	}
	if !strings.Contains(a.stderr.String(), `"max_connections":225`) {
		t.Errorf("agent log: want max_connections lowered to 225 to fit 300 descriptors:\n%s", a.stderr)
	}
	mallory := a.newUser("mallory")
	alice := a.newUser("alice")

	for _, n := range []int{200, 300} {
		cut := slowBodies(t, a.addr, mallory, n)
		time.Sleep(500 * time.Millisecond) // the agent has them now
		// Among 200 the agent answers at once; among 300, past its cap,
		// once the slow ones are cut.
		bound := time.Second
		if n > 225 {
			bound = readTimeout + 3*time.Second
		}
		took := timedList(t, a, alice, bound+5*time.Second)
		t.Logf("among %d slow bodies, a normal request answered in %v", n, took)
		if took > bound {
			t.Errorf("among %d slow bodies, a normal request took %v, want within %v", n, took, bound)
		}
		var longest time.Duration
		for range n {
			select {
			case d := <-cut:
				longest = max(longest, d)
			case <-time.After(readTimeout + 20*time.Second):
				t.Fatalf("%d slow bodies: some still open %v after read_timeout %v", n, readTimeout+20*time.Second, readTimeout)
			}
		}
		t.Logf("all %d slow bodies cut within %v of their start (read_timeout %v)", n, longest, readTimeout)
		// Those past the cap wait to be accepted, then get the bound.
		want := readTimeout + 3*time.Second
		if n > 225 {
			want = 2*readTimeout + 3*time.Second
		}
		if longest > want {
			t.Errorf("%d slow bodies cut after %v, want within %v", n, longest, want)
		}
	}
	if strings.Contains(a.stderr.String(), "too many open files") {
		t.Errorf("the agent ran out of descriptors:\n%s", a.stderr)
	}
	timedList(t, a, alice, time.Second)
}

// TestStreamsOutliveHTTPTimeouts: with read, write and idle timeouts of a
// second, `hush run` (a blocking watch, then a followed log) and `hush
// logs -f` of a run quiet for longer than that see the whole output.
func TestStreamsOutliveHTTPTimeouts(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "http.hcl",
		"http {\n  read_timeout = \"1s\"\n  write_timeout = \"1s\"\n  idle_timeout = \"1s\"\n}\n")
	a := startAgent(t, "", "-config", cfg)
	user := a.newUser("alice")
	start := time.Now()
	r := a.mustHush(user, "", "run", "-f", writeSpec(t, "quiet", "ignored", "sleep 3; echo early; sleep 3; echo late"))
	if !strings.Contains(r.stdout, "early\nlate") {
		t.Errorf("hush run: got %s, want early and late", r)
	}
	t.Logf("hush run followed a run for %v with timeouts of 1s", time.Since(start))

	a.mustHush(user, "", "run", "-f", writeSpec(t, "later", "ignored", "sleep 4; echo later"), "--no-follow")
	start = time.Now()
	r = a.mustHush(user, "", "logs", "-f", "later")
	if !strings.Contains(r.stdout, "later") {
		t.Errorf("hush logs -f: got %s, want later", r)
	}
	t.Logf("hush logs -f followed for %v with timeouts of 1s", time.Since(start))
}

// TestRateLimitCLI: past its token's rate limit the CLI says what happened
// and when to retry; the API answers 429 with Retry-After.
func TestRateLimitCLI(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "http.hcl", "http {\n  rate_limit = 0.2\n  rate_burst = 2\n}\n")
	a := startAgent(t, "", "-config", cfg)
	// The root token is limited as well: one request creates alice's.
	user := a.newUser("alice")
	a.mustHush(user, "", "get", "secrets")
	a.mustHush(user, "", "get", "secrets")
	r := a.hush(user, "", "get", "secrets")
	if r.code != 1 || !strings.Contains(r.stderr, "too many requests with this token") || !strings.Contains(r.stderr, "retry in 5s") {
		t.Errorf("past the limit: got %s; want exit 1 and a message that says what happened and when to retry", r)
	}
	code, body := a.request("GET", "/v1/secrets", user, "")
	var er struct{ Code string }
	json.Unmarshal([]byte(body), &er)
	if code != http.StatusTooManyRequests || er.Code != "rate_limited" {
		t.Errorf("API: got %d %s, want 429 rate_limited", code, body)
	}
	req, _ := http.NewRequest("GET", a.addr+"/v1/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 5 {
		t.Errorf("Retry-After: got %q, want 1 to 5 seconds", resp.Header.Get("Retry-After"))
	}
	// Another token is not slowed by alice's.
	bob := a.newUser("bob")
	a.mustHush(bob, "", "get", "secrets")
}
