package runtime

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// counter prints 0, 1, 2... every 100 ms.
const counter = `i=0; while [ $i -lt 600 ]; do echo $i; i=$((i+1)); sleep 0.1; done`

// execIn returns an exec runtime that keeps its supervisors' state in dir,
// as an agent started on the same state dir would.
func execIn(t *testing.T, dir string) *Exec {
	t.Helper()
	r, err := NewExecIn(hclog.NewNullLogger(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startRun starts command as run id, with SECRET in its secret variables,
// and returns its task and a function that reads its log back once the
// task is deleted.
func startRun(t *testing.T, r *Exec, id, command string) (Task, func() string) {
	t.Helper()
	runDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(runDir, "env"), []byte("SECRET=value-of-"+id), 0o400); err != nil {
		t.Fatal(err)
	}
	target, out := testLog(t, id)
	task, err := r.Start(context.Background(), &Spec{
		ID: id, Command: command, Env: []string{"PLAIN=plain"}, RunDir: runDir, EnvFile: "env",
		HushBinary: os.Args[0], Log: target, Event: func(string, string) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Delete(context.Background()) })
	return task, out
}

func adopt(t *testing.T, r *Exec, id string) Task {
	t.Helper()
	task, err := r.Adopt(context.Background(), id)
	if err != nil {
		t.Fatalf("adopt %s: %v", id, err)
	}
	t.Cleanup(func() { task.Delete(context.Background()) })
	return task
}

func waitCode(t *testing.T, task Task, within time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	code, err := task.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return code
}

// waitFor polls until cond holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// A workload keeps running and logging while no runtime follows it; a
// runtime started later on the same dir (a restarted agent) adopts it,
// stops it, and gets its exit code and its whole log.
func TestExecRunOutlivesItsRuntime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exec")
	_, out := startRun(t, execIn(t, dir), "counter", counter)
	// The first runtime is gone: nothing reads the workload's output.
	time.Sleep(1500 * time.Millisecond)

	task := adopt(t, execIn(t, dir), "counter")
	time.Sleep(500 * time.Millisecond)
	if err := task.Stop(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := waitCode(t, task, 10*time.Second), 128+int(syscall.SIGTERM); got != want {
		t.Errorf("got exit code %d, want %d", got, want)
	}
	if err := task.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out())
	if len(lines) < 15 {
		t.Errorf("got %d lines in 2 s, want about 20: %q", len(lines), lines)
	}
	for i, line := range lines {
		if line != strconv.Itoa(i) {
			t.Fatalf("line %d: got %q, want %d; the log:\n%s", i, line, i, strings.Join(lines, " "))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "counter")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Delete, the supervisor's state is still there: %v", err)
	}
}

// A workload that exits while no runtime watches is adopted with its real
// exit code and its output.
func TestAdoptExitedWorkload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exec")
	startRun(t, execIn(t, dir), "quick", "echo out; echo err >&2; exit 7")
	waitFor(t, "the exit status", func() bool {
		_, err := os.Stat(filepath.Join(dir, "quick", exitFile))
		return err == nil
	})

	r := execIn(t, dir)
	task := adopt(t, r, "quick")
	if got := waitCode(t, task, 10*time.Second); got != 7 {
		t.Errorf("got exit code %d, want 7", got)
	}
	// Adopted twice, as by an agent that restarts again before it ends.
	if got := waitCode(t, adopt(t, execIn(t, dir), "quick"), 10*time.Second); got != 7 {
		t.Errorf("adopted again: got exit code %d, want 7", got)
	}
}

func TestAdoptFindsNoWorkload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exec")
	first := execIn(t, dir)
	lost, _ := startRun(t, first, "lost", "sleep 1000")
	var st supervisorState
	if err := readJSON(filepath.Join(dir, "lost", supervisorFile), &st); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(st.PID, syscall.SIGKILL)
	if _, err := lost.Wait(context.Background()); err == nil {
		t.Error("a supervisor killed before the workload ended: got no error from Wait")
	}

	second := execIn(t, dir)
	for _, id := range []string{"lost", "never-started"} {
		if _, err := second.Adopt(context.Background(), id); !errors.Is(err, ErrNoWorkload) {
			t.Errorf("adopt %s: got %v, want ErrNoWorkload", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lost")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead supervisor's state is still there: %v", err)
	}
}

// Cleanup ends the runs it is not told to keep and removes their state;
// it leaves the others running.
func TestCleanupKeepsOnlyKeptRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exec")
	first := execIn(t, dir)
	gone, _ := startRun(t, first, "gone", "sleep 1000")
	startRun(t, first, "kept", "sleep 1000")

	second := execIn(t, dir)
	kept := adopt(t, second, "kept")
	if err := second.Cleanup(context.Background(), func(id string) bool { return id == "kept" }); err != nil {
		t.Fatal(err)
	}
	// The first runtime sees the supervisor exit, with its state gone.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := gone.Wait(ctx); errors.Is(err, context.DeadlineExceeded) {
		t.Error("the supervisor of the run not kept still runs")
	}
	if _, err := os.Stat(filepath.Join(dir, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state of the run not kept is still there: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if code, err := kept.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the kept run: got exit %d (%v), want it still running", code, err)
	}
}

// Neither the supervisor's command line, its environment nor its state
// holds a secret value.
func TestSupervisorHoldsNoSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exec")
	task, out := startRun(t, execIn(t, dir), "secret", `echo "$SECRET $PLAIN"; exit 3`)
	var st supervisorState
	if err := readJSON(filepath.Join(dir, "secret", supervisorFile), &st); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, f := range []string{"cmdline", "environ"} {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(st.PID), f))
		seen = append(seen, string(b))
	}
	if got := waitCode(t, task, 10*time.Second); got != 3 {
		t.Errorf("got exit code %d, want 3", got)
	}
	for _, name := range []string{supervisorFile, exitFile, supervisorLogFile} {
		b, _ := os.ReadFile(filepath.Join(dir, "secret", name))
		seen = append(seen, string(b))
	}
	for _, s := range seen {
		if strings.Contains(s, "value-of-secret") {
			t.Errorf("the supervisor holds the secret value: %q", s)
		}
	}
	task.Delete(context.Background())
	if got, want := out(), "value-of-secret plain\n"; got != want {
		t.Errorf("got log %q, want %q", got, want)
	}
}

// An adopted sandboxed run keeps its uid: no new run is given it, and a
// Cleanup that keeps the run spares its processes.
func TestAdoptReservesUID(t *testing.T) {
	first := sandboxedExec(t, 310400, 310401)
	sb := *first.sandbox
	u, err := first.AssignUser("a")
	if err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(sb.StateDir, "runs", "a")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(runDir, "env"), nil, 0o400)
	os.Chown(runDir, int(u.UID), int(u.GID))
	target, _ := testLog(t, "a")
	if _, err := first.Start(context.Background(), &Spec{
		ID: "a", Command: "sleep 1000", RunDir: runDir, EnvFile: "env", HushBinary: os.Args[0], User: u,
		Log: target, Event: func(string, string) {},
	}); err != nil {
		t.Fatal(err)
	}

	second, err := NewSandboxedExec(hclog.NewNullLogger(), first.dir, sb)
	if err != nil {
		t.Fatal(err)
	}
	task := adopt(t, second, "a")
	t.Cleanup(func() { second.ReleaseUser("a") })
	if got, _ := second.AssignUser("b"); got.UID == u.UID {
		t.Errorf("a new run got uid %d, which the adopted run holds", got.UID)
	}
	if err := second.Cleanup(context.Background(), func(id string) bool { return id == "a" }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if code, err := task.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the adopted run after Cleanup: got exit %d (%v), want it still running", code, err)
	}
	if err := task.Stop(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := waitCode(t, task, 10*time.Second), 128+int(syscall.SIGTERM); got != want {
		t.Errorf("got exit code %d, want %d", got, want)
	}
	task.Delete(context.Background())
	second.ReleaseUser("a")
	if got, _ := second.AssignUser("c"); got.UID != u.UID {
		t.Errorf("after the release: got uid %d, want the adopted run's %d", got.UID, u.UID)
	}
}

// Without pidfds, a supervisor is still told from a process that took its
// pid, and waited for.
func TestSupervisorProcWithoutPidfd(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	_, start, err := procStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	other := newSupervisorProc(supervisorState{PID: cmd.Process.Pid, StartTime: start + 1})
	other.signal(syscall.SIGTERM) // not the same process: not signalled
	p := newSupervisorProc(supervisorState{PID: cmd.Process.Pid, StartTime: start})
	if !p.sameProcess() || other.sameProcess() {
		t.Fatalf("got same process %v and %v, want true and false", p.sameProcess(), other.sameProcess())
	}
	p.signal(syscall.SIGTERM)
	if !waitTimeout(p.wait, 5*time.Second) {
		t.Fatal("wait did not return once the process exited")
	}
	cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGTERM {
		t.Errorf("got %v, want killed by SIGTERM", cmd.ProcessState)
	}
}

func TestSuperviseMainRefusesBadUse(t *testing.T) {
	tests := map[string][]string{
		"no dir":        nil,
		"relative dir":  {"exec/run"},
		"too many args": {"/a", "/b"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr strings.Builder
			if code := SuperviseMain(args, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: hush _supervise DIR") {
				t.Errorf("got %d %q, want 2 and a usage line", code, stderr.String())
			}
		})
	}
}

// A stop that reaches the supervisor while it still drains the output of
// a background process that holds the pipe does not cost the run its
// exit code.
func TestStopWhileOutputDrains(t *testing.T) {
	r := execIn(t, filepath.Join(t.TempDir(), "exec"))
	task, _ := startRun(t, r, "draining", "sleep 5 & echo bye; exit 3")
	time.Sleep(500 * time.Millisecond) // the command has exited; its output drains
	if err := task.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if code := waitCode(t, task, 10*time.Second); code != 3 {
		t.Errorf("got exit code %d, want the command's 3", code)
	}
}

// waitTimeout runs wait and reports whether it returned within d.
func waitTimeout(wait func(), d time.Duration) bool {
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
