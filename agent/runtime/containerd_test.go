package runtime

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runlog"
)

// secretValue is the secret variable's value in test runs: it must never
// reach containerd's files, the shim's bundle or the logger's command line.
const secretValue = "ctrd-secret-5f1e2d"

// testContainerd connects to the private containerd of .ci/with-containerd,
// whose test image it returns too.
func testContainerd(t *testing.T, logger hclog.Logger) (*Containerd, string) {
	t.Helper()
	socket, image := os.Getenv("HUSH_TEST_CONTAINERD"), os.Getenv("HUSH_TEST_IMAGE")
	if socket == "" || image == "" {
		t.Fatal("this test needs containerd, and fails rather than skips so that CI cannot pass without it: run it through `make test` or `.ci/with-containerd go test ./agent/runtime/`")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	r, err := NewContainerd(context.Background(), socket, "hush", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, image
}

// testSpec returns the spec of a run of command, with a secret variable in
// its env file, and a function that reads its log back once its task is
// deleted. The run sees its run dir at RunDir, where the test can drop
// files the command waits for.
func testSpec(t *testing.T, image, id, command string) (*Spec, func() string) {
	t.Helper()
	runDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(runDir, "env"), []byte("SECRET_STUFF="+secretValue), 0o400); err != nil {
		t.Fatal(err)
	}
	target, read := testLog(t, id)
	return &Spec{
		ID: id, Image: image, Command: command, RunDir: runDir, EnvFile: "env",
		HushBinary: testHushBinary(t), Log: target, Event: func(string, string) {},
	}, read
}

// hushBuild is a static hush binary, built once when the test binary is
// not static: the entrypoint runs it inside the busybox container, which
// has no C library.
var hushBuild struct {
	once      sync.Once
	dir, path string
	err       error
}

// testHushBinary returns a hush binary that serves as entrypoint in the
// container and as the shim's logger: the test binary itself (TestMain
// dispatches both) when it is static, else hush built without cgo.
func testHushBinary(t *testing.T) string {
	t.Helper()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if isStatic(t, self) {
		return self
	}
	hushBuild.once.Do(func() {
		hushBuild.dir, hushBuild.err = os.MkdirTemp("", "hush-runtime-test-")
		if hushBuild.err != nil {
			return
		}
		hushBuild.path = filepath.Join(hushBuild.dir, "hush")
		cmd := exec.Command("go", "build", "-trimpath", "-o", hushBuild.path, "github.com/hush-sh/hush")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			hushBuild.err = fmt.Errorf("build a static hush: %v\n%s", err, out)
		}
	})
	if hushBuild.err != nil {
		t.Fatal(hushBuild.err)
	}
	return hushBuild.path
}

// removeHushBuild removes the static hush that testHushBinary built.
func removeHushBuild() {
	if hushBuild.dir != "" {
		os.RemoveAll(hushBuild.dir)
	}
}

// isStatic reports whether the executable at path needs no dynamic loader.
func isStatic(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// processesWith returns the pids of the processes whose command line is exactly
// args.
func processesWith(t *testing.T, args ...string) []string {
	t.Helper()
	want := strings.Join(args, "\x00") + "\x00"
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && string(b) == want {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

// grepTree returns the regular files under dir that contain value.
func grepTree(t *testing.T, dir string, value []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, value) {
			hits = append(hits, path)
		}
		return nil
	})
	return hits
}

// release creates the file that a test run's command waits for.
func release(t *testing.T, spec *Spec) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(spec.RunDir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitForGo is the part of a test command that waits for release.
const waitForGo = `until [ -e ` + RunDir + `/go ]; do sleep 0.05; done; `

// The shim starts the test binary as `_logger TARGET` (args as the logger
// expects them on containerd 1.6), which seals all output, the last bytes
// printed right before exit included, before Delete returns; no secret
// reaches containerd's files, the bundle, or the logger's command line.
func TestContainerdLogsThroughShimLogger(t *testing.T) {
	r, image := testContainerd(t, nil)
	spec, readLog := testSpec(t, image, "rt-log",
		`echo out; echo err >&2; `+waitForGo+`echo "secret=$SECRET_STUFF"; printf last; exit 3`)
	task, err := r.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(context.Background())

	logger := []string{spec.HushBinary, runlog.LoggerCommand, spec.Log.Encode()}
	pids := processesWith(t, logger...)
	if len(pids) != 1 {
		t.Errorf("got %d processes %q, want one", len(pids), logger)
	}
	for _, pid := range pids {
		if env, err := os.ReadFile("/proc/" + pid + "/environ"); err != nil || bytes.Contains(env, []byte(secretValue)) {
			t.Errorf("the logger's environment holds the secret, or cannot be read: %v", err)
		}
	}
	if strings.Contains(spec.Log.Encode(), secretValue) {
		t.Errorf("the logger's argument holds the secret: %s", spec.Log.Encode())
	}
	if hits := grepTree(t, filepath.Dir(r.address), []byte(secretValue)); len(hits) > 0 {
		t.Errorf("while the run is active, the secret is in plaintext in %v", hits)
	}

	release(t, spec)
	if code := waitCode(t, task, 30*time.Second); code != 3 {
		t.Errorf("got exit code %d, want 3", code)
	}
	if err := task.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readLog()
	for _, want := range []string{"out\n", "err\n", "secret=" + secretValue + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("got log %q, want it to hold %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "\nlast") {
		t.Errorf("got log %q, want it to end with what the run printed last", got)
	}
	if pids := processesWith(t, logger...); len(pids) != 0 {
		t.Errorf("the logger still runs after Delete: %v", pids)
	}
	if _, err := r.client.LoadContainer(r.ctx(context.Background()), spec.ID); !errdefs.IsNotFound(err) {
		t.Errorf("got %v loading the container after Delete, want not found", err)
	}
	if hits := grepTree(t, filepath.Dir(r.address), []byte(secretValue)); len(hits) > 0 {
		t.Errorf("the secret is in plaintext in %v", hits)
	}
}

// A logger that cannot start (here: it cannot read its key) fails the
// start, instead of leaving the run's output nowhere.
func TestContainerdStartFailsWithoutLogger(t *testing.T) {
	r, image := testContainerd(t, nil)
	spec, _ := testSpec(t, image, "rt-nolog", "echo hello")
	spec.Log.Key = filepath.Join(t.TempDir(), "missing")
	_, err := r.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "wrote no log") {
		t.Fatalf("got %v, want an error saying the logger wrote no log", err)
	}
	if _, err := r.client.LoadContainer(r.ctx(context.Background()), spec.ID); !errdefs.IsNotFound(err) {
		t.Errorf("got %v loading the container of the failed start, want not found", err)
	}
}

// newTestContainer makes a container of image that sleeps, with labels, and
// a task: "started", "created" (never started), or "" for none.
func newTestContainer(t *testing.T, r *Containerd, image, id string, labels map[string]string, task string) client.Container {
	t.Helper()
	ctx := r.ctx(context.Background())
	img, err := r.client.GetImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.client.NewContainer(ctx, id, client.WithImage(img), client.WithNewSnapshot(id, img),
		client.WithContainerLabels(labels),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "1000")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.remove(context.Background(), c) })
	if task == "" {
		return c
	}
	tk, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if task == "started" {
		if err := tk.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// A new agent (a runtime of its own) adopts the task of a run that still
// runs, and stops it; and that of a run that exited while no agent ran,
// with its real exit code. Only a started task is a workload.
func TestContainerdAdopt(t *testing.T) {
	old, image := testContainerd(t, nil)
	running, runningLog := testSpec(t, image, "rt-adopt-running", `echo started; `+waitForGo+`exit 5`)
	exited, exitedLog := testSpec(t, image, "rt-adopt-exited", `echo bye; exit 4`)
	for _, spec := range []*Spec{running, exited} {
		if _, err := old.Start(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
	}
	// The old agent goes away without deleting its tasks.
	old.Close()

	r, _ := testContainerd(t, nil)
	ctx := r.ctx(context.Background())
	// Let the second run exit while no agent watches it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, _ := r.client.LoadContainer(ctx, exited.ID)
		tk, _ := c.Task(ctx, nil)
		st, _ := tk.Status(ctx)
		if st.Status == client.Stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not exit: %v", st.Status)
		}
	}
	task, err := r.Adopt(context.Background(), exited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if code := waitCode(t, task, 30*time.Second); code != 4 {
		t.Errorf("got exit code %d of the run that exited while no agent ran, want 4", code)
	}
	if err := task.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exitedLog(); got != "bye\n" {
		t.Errorf("got log %q, want %q", got, "bye\n")
	}

	task, err = r.Adopt(context.Background(), running.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The workload is the container's PID 1, which SIGTERM does not end.
	if err := task.Stop(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if code := waitCode(t, task, 30*time.Second); code != 137 {
		t.Errorf("got exit code %d of the adopted run after Stop, want 137", code)
	}
	if err := task.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := runningLog(); got != "started\n" {
		t.Errorf("got log %q, want %q", got, "started\n")
	}

	tests := map[string]struct {
		task string // "", "created"
	}{
		"container without a task": {task: ""},
		"task never started":       {task: "created"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id := "rt-adopt-" + strings.ReplaceAll(name, " ", "-")
			c := newTestContainer(t, r, image, id, r.labels(id), tc.task)
			if _, err := r.Adopt(context.Background(), id); !errors.Is(err, ErrNoWorkload) {
				t.Fatalf("got %v, want ErrNoWorkload", err)
			}
			if _, err := c.Task(ctx, nil); !errdefs.IsNotFound(err) {
				t.Errorf("got %v loading the task after Adopt, want not found", err)
			}
			if _, err := r.client.LoadContainer(ctx, id); err != nil {
				t.Errorf("the container is gone after Adopt, want it left to Cleanup: %v", err)
			}
		})
	}
	if _, err := r.Adopt(context.Background(), "rt-adopt-none"); !errors.Is(err, ErrNoWorkload) {
		t.Errorf("got %v adopting a run without a container, want ErrNoWorkload", err)
	}
	// A running task of an older hush, whose output went to that agent.
	newTestContainer(t, r, image, "rt-adopt-older", map[string]string{runLabel: "rt-adopt-older"}, "started")
	if _, err := r.Adopt(context.Background(), "rt-adopt-older"); !errors.Is(err, ErrNoWorkload) || !strings.Contains(err.Error(), "older hush") {
		t.Errorf("got %v adopting an older hush's container, want ErrNoWorkload saying so", err)
	}
}

// Cleanup lists hush's containers on containerd 1.6 (the label key has a
// "-" that the filter must quote) and removes those of runs that are not
// kept, task and snapshot included, with a line each; other containers in
// the namespace stay, and so do those of another agent (its data dir in
// their owner label). The runtime here has no owner: containers without
// the owner label count as its own.
func TestContainerdCleanup(t *testing.T) {
	var logs bytes.Buffer
	r, image := testContainerd(t, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	ctx := r.ctx(context.Background())
	hush := func(id string) map[string]string { return map[string]string{runLabel: id} }
	containers := map[string]client.Container{
		"rt-clean-kept":         newTestContainer(t, r, image, "rt-clean-kept", hush("rt-clean-kept"), "started"),
		"rt-clean-running":      newTestContainer(t, r, image, "rt-clean-running", hush("rt-clean-running"), "started"),
		"rt-clean-without-task": newTestContainer(t, r, image, "rt-clean-without-task", hush("rt-clean-without-task"), ""),
		"rt-clean-not-hush":     newTestContainer(t, r, image, "rt-clean-not-hush", map[string]string{"other": "x"}, "started"),
		"rt-clean-other-agent": newTestContainer(t, r, image, "rt-clean-other-agent",
			map[string]string{runLabel: "rt-clean-other-agent", ownerLabel: "/var/lib/other-agent"}, "started"),
	}
	snapshotters := map[string]string{}
	for id, c := range containers {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snapshotters[id] = info.Snapshotter
	}

	if err := r.Cleanup(context.Background(), func(id string) bool { return id == "rt-clean-kept" }); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ removed bool }{
		"rt-clean-kept":         {false},
		"rt-clean-running":      {true},
		"rt-clean-without-task": {true},
		"rt-clean-not-hush":     {false},
		"rt-clean-other-agent":  {false},
	}
	for id, tc := range tests {
		t.Run(id, func(t *testing.T) {
			_, err := r.client.LoadContainer(ctx, id)
			_, snapErr := r.client.SnapshotService(snapshotters[id]).Stat(ctx, id)
			if tc.removed {
				if !errdefs.IsNotFound(err) || !errdefs.IsNotFound(snapErr) {
					t.Errorf("got %v loading the container and %v its snapshot, want both not found", err, snapErr)
				}
			} else if err != nil || snapErr != nil {
				t.Errorf("got %v loading the container and %v its snapshot, want both kept", err, snapErr)
			}
			if lines := strings.Count(logs.String(), "run_id="+id+"\n"); lines != map[bool]int{true: 1}[tc.removed] {
				t.Errorf("got %d log lines naming it, want %d:\n%s", lines, map[bool]int{true: 1}[tc.removed], logs.String())
			}
		})
	}
	if tk, err := containers["rt-clean-kept"].Task(ctx, nil); err != nil {
		t.Errorf("the kept run's task is gone: %v", err)
	} else if st, _ := tk.Status(ctx); st.Status != client.Running {
		t.Errorf("got the kept run's task %s, want running", st.Status)
	}
}

// containerd stops under a running task and starts again: the task's wait
// does not end on the broken connection, and gives the exit code of the
// task, which exited while containerd was down. A start while containerd
// is down fails fast, and works again once it is back.
func TestContainerdRestart(t *testing.T) {
	r, image := testContainerd(t, hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Debug}))
	daemon := os.Getenv("HUSH_TEST_CONTAINERD_DAEMON")
	if daemon == "" {
		t.Fatal("HUSH_TEST_CONTAINERD_DAEMON is not set: run this test through .ci/with-containerd")
	}
	dir := filepath.Dir(r.address)
	control := func(action string) {
		t.Helper()
		t0 := time.Now()
		defer func() { t.Logf("%s took %s", action, time.Since(t0)) }()
		if out, err := exec.Command(daemon, dir, action).CombinedOutput(); err != nil {
			t.Fatalf("%s containerd: %v\n%s", action, err, out)
		}
	}
	spec, readLog := testSpec(t, image, "rt-restart", `echo before; `+waitForGo+`echo after; exit 7`)
	task, err := r.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(context.Background())
	type result struct {
		code int
		err  error
	}
	waited := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, err := task.Wait(ctx)
		waited <- result{code, err}
	}()

	control("stop")
	// Whatever happens below, the other tests need containerd back.
	t.Cleanup(func() {
		if r.answering(context.Background()) != nil {
			exec.Command(daemon, dir, "start").Run()
		}
	})
	other, _ := testSpec(t, image, "rt-restart-other", "exit 0")
	start := time.Now()
	_, err = r.Start(context.Background(), other)
	want := fmt.Sprintf("containerd at %s is not answering: ", r.address)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "(is it running?)") {
		t.Errorf("got %v starting a run while containerd is down, want %q...(is it running?)", err, want)
	}
	t.Logf("a start while containerd is down failed in %s: %v", time.Since(start), err)
	if took := time.Since(start); took > answerTimeout+time.Second {
		t.Errorf("a start while containerd is down took %s, want at most %s", took, answerTimeout+time.Second)
	}
	release(t, spec)
	time.Sleep(500 * time.Millisecond)
	select {
	case res := <-waited:
		t.Fatalf("the wait ended while containerd was down: %d, %v", res.code, res.err)
	default:
	}
	control("start")

	select {
	case res := <-waited:
		if res.err != nil || res.code != 7 {
			t.Errorf("got %d, %v from the wait across the restart, want 7", res.code, res.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end after containerd came back")
	}
	if err := task.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readLog(); got != "before\nafter\n" {
		t.Errorf("got log %q, want %q", got, "before\nafter\n")
	}

	// Runs start again.
	again, err := r.Start(context.Background(), other)
	if err != nil {
		t.Fatalf("start after containerd came back: %v", err)
	}
	if code := waitCode(t, again, 30*time.Second); code != 0 {
		t.Errorf("got exit code %d, want 0", code)
	}
	if err := again.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
}
