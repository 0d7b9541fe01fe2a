package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restartable is an agent for runs that outlive it: it leaves its runs
// going when it stops, and starts again on the same data dir, port and
// config, as an upgraded agent would.
type restartable struct {
	t       *testing.T
	dataDir string
	args    []string
	*agent
}

// startRestartable starts such an agent on runtime, with attrs added to
// its runtime block.
func startRestartable(t *testing.T, runtime string, attrs ...string) *restartable {
	t.Helper()
	dir := t.TempDir()
	block := execRuntime(append([]string{`stop_grace = "2s"`}, attrs...)...)
	if runtime == "containerd" {
		socket, _ := containerdEnv(t)
		block = fmt.Sprintf("runtime \"containerd\" {\n  address = %q\n  namespace = \"hush\"\n  stop_grace = \"2s\"\n  %s\n}", socket, strings.Join(attrs, "\n  "))
	}
	// A fixed port: a run's HUSH_ADDR must reach the restarted agent.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\nleave_runs_on_shutdown = true\n%s\n", filepath.Join(dir, "state"), block))
	r := &restartable{t: t, dataDir: filepath.Join(dir, "data"), args: []string{"-config", cfg, "-bind", addr}}
	r.agent = startAgent(t, r.dataDir, r.args...)
	t.Cleanup(func() {
		// The last agent stops what is left, so that no test leaves
		// workloads behind.
		r.restartWith(syscall.SIGTERM, 0, "leave_runs_on_shutdown = false\n")
		r.stop()
	})
	return r
}

// restart ends the agent with sig, waits for pause, and starts it again.
func (r *restartable) restart(sig syscall.Signal, pause time.Duration) {
	r.t.Helper()
	r.restartWith(sig, pause, "")
}

func (r *restartable) restartWith(sig syscall.Signal, pause time.Duration, extra string) {
	r.t.Helper()
	select {
	case <-r.exited:
	default:
		r.cmd.Process.Signal(sig)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			r.t.Fatalf("agent did not end within 15s of %v", sig)
		}
	}
	time.Sleep(pause)
	args := r.args
	if extra != "" {
		args = append(args, "-config", writeFile(r.t, r.t.TempDir(), "extra.hcl", extra))
	}
	r.agent = startAgent(r.t, r.dataDir, args...)
}

// waitStatus waits until run name has one of the statuses, and returns
// its state.
func waitStatus(t *testing.T, a *agent, token, name string, within time.Duration, statuses ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := runStatus(t, a, token, name)
		for _, s := range statuses {
			if st["status"] == s {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %v after %s, want %v: %v", name, st["status"], within, statuses, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counterScript prints 0 to n-1, one every 100 ms, then exits with code.
func counterScript(n, code int) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo $i; i=$((i+1)); sleep 0.1; done; hush get runs >/dev/null && echo token-ok; exit %d`, n, code)
}

// checkCounter checks that out holds 0 to n-1 in order, none missing,
// then the run token's check.
func checkCounter(t *testing.T, out string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+1 || lines[n] != "token-ok" {
		t.Fatalf("got %d lines ending %q, want %d numbers then token-ok:\n%s", len(lines), lines[len(lines)-1], n, out)
	}
	for i, l := range lines[:n] {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q, want %d:\n%s", i, l, i, out)
		}
	}
}

// TestRunsOutliveTheAgent stops the agent under a run that prints a
// counter, with SIGKILL and with SIGTERM, on both runtimes: the restarted
// agent adopts the run, which stays RUNNING, keeps its token, loses none
// of its output and completes; a run that exits while the agent is away
// is recorded with its real exit code.
func TestRunsOutliveTheAgent(t *testing.T) {
	for _, rt := range []string{"containerd", "exec"} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
			t.Run(rt+"/"+sig.String(), func(t *testing.T) {
				_, image := containerdEnv(t)
				r := startRestartable(t, rt)
				user := r.newUser("alice")
				r.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "counter", image, counterScript(50, 0)))
				r.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "quick", image, "sleep 1; echo bye; exit 7"))
				waitForLog(t, r.agent, user, "counter", "3\n")
				// One who follows a run as the agent goes is told how to
				// follow it again.
				attached := make(chan result, 1)
				addr := r.addr
				go func() {
					attached <- runHush(t, []string{"HUSH_ADDR=" + addr, "HUSH_TOKEN=" + user}, "", "run", "-f", writeSpec(t, "attached", image, "sleep 30"))
				}()
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					if code, body := r.request("GET", "/v1/runs/attached", user, ""); code == 200 && strings.Contains(body, `"RUNNING"`) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the attached run did not start")
					}
				}
				time.Sleep(300 * time.Millisecond) // hush run follows its logs

				r.restart(sig, 2*time.Second)
				if a := <-attached; a.code != 1 || !strings.Contains(a.stderr, "Lost the agent while following run attached") ||
					!strings.Contains(a.stdout, "`hush logs attached -f`") {
					t.Errorf("hush run following the run as the agent went: exit %d\nstdout:\n%s\nstderr:\n%s", a.code, a.stdout, a.stderr)
				}
				if st := runStatus(t, r.agent, user, "counter"); st["status"] != "RUNNING" {
					t.Fatalf("after the restart the counter run is %v, want RUNNING: %v", st["status"], st)
				}
				quick := waitStatus(t, r.agent, user, "quick", 10*time.Second, "FAILED", "COMPLETED", "LOST")
				if quick["status"] != "FAILED" || quick["exit_code"] != float64(7) {
					t.Errorf("the run that exited while the agent was away: got %v exit %v, want FAILED exit 7", quick["status"], quick["exit_code"])
				}
				if out := r.mustHush(user, "", "logs", "quick").stdout; out != "bye\n" {
					t.Errorf("its log: got %q, want bye", out)
				}
				// Follow the adopted run to its end, as a user would.
				out := r.mustHush(user, "", "logs", "-f", "counter").stdout
				checkCounter(t, out, 50)
				end := waitStatus(t, r.agent, user, "counter", 10*time.Second, "COMPLETED", "FAILED", "LOST", "STOPPED")
				if end["status"] != "COMPLETED" || end["exit_code"] != float64(0) {
					t.Errorf("got %v exit %v, want COMPLETED exit 0: %v", end["status"], end["exit_code"], end)
				}
				if !strings.Contains(fmt.Sprint(end["events"]), "adopted") {
					t.Errorf("no adopted event in %v", end["events"])
				}
			})
		}
	}
}

// TestManyRunsAdopted restarts an agent with SIGKILL under 20 active
// runs: all 20 are adopted, none lost, and no container is left once
// they end.
func TestManyRunsAdopted(t *testing.T) {
	socket, image := containerdEnv(t)
	r := startRestartable(t, "containerd")
	user := r.newUser("alice")
	const n = 20
	for i := range n {
		r.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, fmt.Sprintf("many-%02d", i), image, "sleep 6; echo done"))
	}
	for i := range n {
		waitStatus(t, r.agent, user, fmt.Sprintf("many-%02d", i), time.Minute, "RUNNING")
	}
	r.restart(syscall.SIGKILL, time.Second)
	adopted, lost := 0, 0
	for i := range n {
		st := waitStatus(t, r.agent, user, fmt.Sprintf("many-%02d", i), time.Minute, "COMPLETED", "FAILED", "LOST", "STOPPED")
		switch {
		case st["status"] == "LOST":
			lost++
		case st["status"] == "COMPLETED" && strings.Contains(fmt.Sprint(st["events"]), "adopted"):
			adopted++
		default:
			t.Errorf("run many-%02d: got %v: %v", i, st["status"], st)
		}
	}
	out, err := exec.Command("ctr", "--address", socket, "-n", "hush", "containers", "ls", "-q").CombinedOutput()
	orphans := len(strings.Fields(string(out)))
	t.Logf("%d runs active across an agent SIGKILL: %d adopted, %d lost, %d containers left", n, adopted, lost, orphans)
	if adopted != n || lost != 0 || err != nil || orphans != 0 {
		t.Errorf("want %d adopted, 0 lost, 0 containers left (%v)", n, err)
	}
}

// TestContainerdRestartUnderRun stops containerd under an active run and
// starts it again: the run completes with its whole log and is reported,
// a run submitted while containerd is down is refused with a message
// that says so, and runs start again once it is back.
func TestContainerdRestartUnderRun(t *testing.T) {
	socket, image := containerdEnv(t)
	daemon := os.Getenv("HUSH_TEST_CONTAINERD_DAEMON")
	if daemon == "" {
		t.Fatal("this test restarts containerd: run it through `.ci/with-containerd`, which names the script in HUSH_TEST_CONTAINERD_DAEMON")
	}
	ctrd := func(action string) {
		t.Helper()
		if out, err := exec.Command(daemon, filepath.Dir(socket), action).CombinedOutput(); err != nil {
			t.Fatalf("%s containerd: %v\n%s", action, err, out)
		}
	}
	a := startRunAgent(t, "containerd")
	user := a.newUser("alice")
	a.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "through", image, counterScript(30, 0)))
	waitForLog(t, a, user, "through", "3\n")

	ctrd("stop")
	stopped := true
	defer func() {
		if stopped {
			ctrd("start")
		}
	}()
	start := time.Now()
	r := a.hush(user, "", "run", "-f", writeSpec(t, "while-down", image, "echo never"))
	if r.code == 0 || !strings.Contains(r.stderr, "containerd at "+socket+" is not answering") || time.Since(start) > 10*time.Second {
		t.Errorf("a run submitted while containerd is down: got exit %d after %s:\n%s", r.code, time.Since(start), r)
	}
	time.Sleep(time.Second)
	ctrd("start")
	stopped = false

	out := a.mustHush(user, "", "logs", "-f", "through").stdout
	checkCounter(t, out, 30)
	end := waitStatus(t, a, user, "through", 30*time.Second, "COMPLETED", "FAILED", "LOST", "STOPPED")
	if end["status"] != "COMPLETED" || end["exit_code"] != float64(0) {
		t.Errorf("the run across containerd's restart: got %v exit %v, want COMPLETED exit 0: %v", end["status"], end["exit_code"], end)
	}
	if r := a.hush(user, "", "run", "-f", writeSpec(t, "after", image, "echo back")); r.code != 0 || !strings.Contains(r.stdout, "back") {
		t.Errorf("a run once containerd is back: %s", r)
	}
}
