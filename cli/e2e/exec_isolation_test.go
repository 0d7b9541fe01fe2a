package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stateDir is where startRunAgent put the agent's state dir.
func (a *agent) stateDir() string { return filepath.Join(filepath.Dir(a.dataDir), "state") }

// waitForLog waits until the run's log holds want and returns the log.
func waitForLog(t *testing.T, a *agent, token, run, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := a.hush(token, "", "logs", run).stdout
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never printed %q; its log:\n%s\nits state: %v", run, want, out, runStatus(t, a, token, run))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alicesRun starts alice's run that holds secrets and waits while bob's
// run looks for them. It returns her token, her run's host dir and what
// her run printed.
func alicesRun(t *testing.T, a *agent, image string) (token, runDir, log string) {
	t.Helper()
	token = a.newUser("alice")
	a.mustHush(token, "", "create", "secret", "env", "ALICE_ENV=alice-env-7f3c")
	a.mustHush(token, "", "create", "secret", "mounted", writeFile(t, t.TempDir(), "f", "alice-file-7f3c"), "--name", "alice-file")
	a.mustHush(token, "", "run", "--no-follow", "-f", writeSpec(t, "holder", image, `echo "pid=$$ uid=$(id -u)"; echo ready; sleep 1000`))
	log = waitForLog(t, a, token, "holder", "ready")
	runDir = filepath.Join(a.stateDir(), "runs", runStatus(t, a, token, "holder")["id"].(string))
	if _, err := os.Stat(filepath.Join(runDir, "token")); err != nil {
		t.Fatalf("alice's run token is not where the test looks: %v", err)
	}
	return token, runDir, log
}

// assertNoLeak fails when bob's output holds anything of alice's.
func assertNoLeak(t *testing.T, bobOut, aliceRunDir string) {
	t.Helper()
	aliceToken, err := os.ReadFile(filepath.Join(aliceRunDir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	for what, value := range map[string]string{
		"run token": strings.TrimSpace(string(aliceToken)), "env secret": "alice-env-7f3c",
		"file secret": "alice-file-7f3c",
	} {
		if strings.Contains(bobOut, value) {
			t.Errorf("bob's run found alice's %s:\n%s", what, bobOut)
		}
	}
}

// On the exec runtime one user's run must not read another's secrets,
// token or environment: each run has a uid of its own, and the state dir
// that holds every run's tmpfs shows a run only its own.
func TestExecRunsIsolated(t *testing.T) {
	a := startRunAgent(t, "exec")
	_, aliceDir, aliceLog := alicesRun(t, a, "x")
	m := regexp.MustCompile(`pid=(\d+) uid=(\d+)`).FindStringSubmatch(aliceLog)
	if m == nil {
		t.Fatalf("alice's run printed %q", aliceLog)
	}
	alicePID, aliceUID := m[1], m[2]
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(aliceDir, "token"), &st); err != nil || strconv.Itoa(int(st.Uid)) != aliceUID {
		t.Errorf("alice's token file: got owner %d (%v), want her run's uid %s", st.Uid, err, aliceUID)
	}

	bob := a.newUser("bob")
	a.mustHush(bob, "", "create", "secret", "env", "BOB_ENV=bob-env-91aa")
	script := fmt.Sprintf(`echo "uid=$(id -u) bob=$BOB_ENV"
echo "state=[$(ls -aR %[1]s | tr '\n' ' ')]"
cat %[2]s/token %[2]s/env %[2]s/files/alice-file/secret
ls %[2]s
tr '\0' '\n' < /proc/%[3]s/environ
echo "token=$(cat $HUSH_TOKEN_FILE | head -c 5)"
echo done`, a.stateDir(), aliceDir, alicePID)
	r := a.hush(bob, "", "run", "-f", writeSpec(t, "snoop", "x", script))
	bobOut := r.stdout + r.stderr
	assertNoLeak(t, bobOut, aliceDir)
	state := regexp.MustCompile(`state=\[.*\]`).FindString(bobOut)
	if !strings.Contains(state, "bin") || !strings.Contains(state, "token") || strings.Contains(state, filepath.Base(aliceDir)) {
		t.Errorf("bob's view of the state dir: got %s, want his own run dir and the hush binary only", state)
	}
	for _, want := range []string{"bob=bob-env-91aa", "token=hush_", "done",
		aliceDir + "/token: No such file or directory", "/proc/" + alicePID + "/environ: Permission denied"} {
		if !strings.Contains(bobOut, want) {
			t.Errorf("bob's run output lacks %q:\n%s", want, bobOut)
		}
	}
	bobUID := regexp.MustCompile(`uid=(\d+) bob=`).FindStringSubmatch(bobOut)
	if bobUID == nil || bobUID[1] == "0" || aliceUID == "0" || bobUID[1] == aliceUID {
		t.Errorf("got uids %s (alice) and %v (bob), want two different ones, neither root", aliceUID, bobUID)
	}
	// On the host, only root reaches alice's run dir, and only her uid
	// may read inside it.
	for dir, want := range map[string]string{filepath.Dir(aliceDir): "0 700", aliceDir: aliceUID + " 700"} {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d %o", st.Uid, st.Mode&0o7777); got != want {
			t.Errorf("%s: got owner and mode %s, want %s", dir, got, want)
		}
	}
}

// A run's processes end with it, even one that left its session: a later
// run given the same uid must find nothing of it.
func TestExecRunLeavesNoProcesses(t *testing.T) {
	a := startRunAgent(t, "exec")
	user := a.newUser("alice")
	// A daemon that leaves the run's session, with and without the run's
	// output: the run ends with its command all the same (the second one
	// would hold the output pipe for 30s), and the daemon with it.
	for name, command := range map[string]string{
		"detached":     `setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo "uid=$(id -u)"`,
		"holds-output": `setsid sleep 30 & echo "uid=$(id -u)"`,
	} {
		start := time.Now()
		r := a.mustHush(user, "", "run", "-f", writeSpec(t, name, "x", command))
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("%s: the run took %s to end, want it to end with its command", name, took)
		}
		m := regexp.MustCompile(`uid=(\d+)`).FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("run printed %s", r)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := processesOf(t, m[1])
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: processes of the ended run's uid %s: %v", name, m[1], left)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// processesOf lists the live processes whose real uid is uid.
func processesOf(t *testing.T, uid string) []string {
	t.Helper()
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		s := string(status)
		if regexp.MustCompile(`(?m)^Uid:\s+`+uid+`\s`).MatchString(s) && !regexp.MustCompile(`(?m)^State:\s+Z`).MatchString(s) {
			out = append(out, e.Name())
		}
	}
	return out
}

// The exec runtime with isolation on still does what runs need: a nested
// run through hush on PATH and the run token, stop with SIGTERM then
// SIGKILL, and logs.
func TestExecRunLifecycle(t *testing.T) {
	a := startRunAgent(t, "exec")
	user := a.newUser("alice")
	a.mustHush(user, "", "create", "secret", "env", "SECRET_STUFF=nested-value")
	parent := `printf 'name: child\nimage: x\ncommand: echo child sees $SECRET_STUFF as $(id -u)\n' > /tmp/child.yaml
echo "parent is $(id -u)"
hush run -f /tmp/child.yaml`
	r := a.mustHush(user, "", "run", "-f", writeSpec(t, "parent", "x", parent))
	if !strings.Contains(r.stdout, "child sees nested-value") || !strings.Contains(r.stdout, "✔  Run child completed") {
		t.Errorf("nested run: %s", r)
	}
	ids := regexp.MustCompile(`parent is (\d+)[\s\S]*child sees nested-value as (\d+)`).FindStringSubmatch(r.stdout)
	if ids == nil || ids[1] == ids[2] {
		t.Errorf("parent and child: want two different uids; got %s", r.stdout)
	}

	a.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "sleeper", "x", `trap "" TERM; echo sleeping; sleep 1000`))
	waitForLog(t, a, user, "sleeper", "sleeping")
	start := time.Now()
	a.mustHush(user, "", "stop", "run", "sleeper")
	for runStatus(t, a, user, "sleeper")["status"] != "STOPPED" && time.Since(start) < 15*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	// It ignores SIGTERM: only the SIGKILL after the 2s grace period ends
	// it (8s leaves room for a loaded machine; without the kill it would
	// sleep 1000s).
	if s := runStatus(t, a, user, "sleeper")["status"]; s != "STOPPED" || time.Since(start) > 8*time.Second {
		t.Errorf("after stop: %v after %s, want STOPPED after the 2s grace period", s, time.Since(start))
	}
	if out := a.mustHush(user, "", "logs", "sleeper").stdout; out != "sleeping\n" {
		t.Errorf("logs: got %q", out)
	}
}

// On containerd, bob's container sees only its own run dir: alice's
// token and files are not in it, and the host's state dir is not there.
func TestContainerdRunsIsolated(t *testing.T) {
	_, image := containerdEnv(t)
	a := startRunAgent(t, "containerd")
	_, aliceDir, _ := alicesRun(t, a, image)
	bob := a.newUser("bob")
	script := fmt.Sprintf(`echo "run=[$(ls -a /.hush/run | tr '\n' ' ')] hush=[$(ls -a /.hush | tr '\n' ' ')]"
ls %[1]s
cat %[2]s/token %[2]s/files/alice-file/secret
echo done`, a.stateDir(), aliceDir)
	r := a.hush(bob, "", "run", "-f", writeSpec(t, "snoop", image, script))
	bobOut := r.stdout + r.stderr
	assertNoLeak(t, bobOut, aliceDir)
	for _, want := range []string{"run=[. .. env token ] hush=[. .. bin run ]", a.stateDir() + ": No such file or directory",
		"can't open '" + aliceDir + "/token': No such file or directory", "done"} {
		if !strings.Contains(bobOut, want) {
			t.Errorf("bob's run output lacks %q:\n%s", want, bobOut)
		}
	}
}

// A root agent outside dev mode refuses to run exec workloads as root,
// and says what to add; in dev mode it warns that runs are not isolated.
func TestAgentRefusesUnisolatedExec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only a root agent refuses; this test does not run as root")
	}
	dir := t.TempDir()
	cfgs := map[string]string{"exec block": `runtime "exec" { stop_grace = "2s" }`}
	if _, err := os.Stat("/run/containerd/containerd.sock"); err != nil {
		cfgs["containerd fallback"] = ``
	}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\n%s\n", filepath.Join(dir, "state"), cfg))
			// Bounded: an agent that does not refuse serves until killed.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, hushBin, "agent", "-bind", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "data"), "-config", p)
			cmd.Env = cleanEnv()
			out, err := cmd.CombinedOutput()
			want := `Add runtime "exec" { uid_range = "700000000-700065535" } to the agent config`
			if err == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), want) ||
				!strings.Contains(string(out), "or run containerd") {
				t.Errorf("got %v:\n%s\nwant exit 1 and %q", err, out, want)
			}
			if strings.Contains(string(out), "agent started") {
				t.Errorf("the agent started:\n%s", out)
			}
		})
	}

	dev := startAgent(t, "", "-config", writeFile(t, dir, "dev.hcl", `runtime "exec" {}`))
	if !strings.Contains(dev.stderr.String(), "runs are not isolated: they run as the agent's user") {
		t.Errorf("dev agent log lacks the warning:\n%s", dev.stderr)
	}
	if !strings.Contains(dev.stdout.String(), "Runtime:    exec (runs are not isolated from each other)") {
		t.Errorf("dev banner:\n%s", dev.stdout)
	}
}
