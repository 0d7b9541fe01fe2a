package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/runlog"
)

// TestMain lets the test binary serve as the hush entrypoint, supervisor
// and run logger: the exec runtime starts `HUSH _supervise DIR`, which
// starts `HUSH _entrypoint --env-file F [sandbox flags] -- argv...`, and
// containerd's shim starts `HUSH _logger TARGET`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case EntrypointCommand:
			os.Exit(EntrypointMain(os.Args[2:], os.Stderr))
		case SuperviseCommand:
			os.Exit(SuperviseMain(os.Args[2:], os.Stderr))
		case runlog.LoggerCommand:
			os.Exit(runlog.LoggerMain(os.Args[2:], os.Stderr))
		}
	}
	code := m.Run()
	removeHushBuild()
	os.Exit(code)
}

// Two sandboxed workloads, started by an agent whose umask is 0077: each
// runs as its own user with its secret variables, reaches its own run dir
// and the hush binary, and finds nothing of the other.
func TestSandboxedStart(t *testing.T) {
	r := sandboxedExec(t, 310300, 310301)
	state := r.sandbox.StateDir
	defer syscall.Umask(syscall.Umask(0o077))

	start := func(id, command string) (func() string, Task) {
		t.Helper()
		u, err := r.AssignUser(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.ReleaseUser(id) })
		dir := filepath.Join(state, "runs", id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "env"), []byte("SECRET=value-of-"+id), 0o400)
		os.WriteFile(filepath.Join(dir, "token"), []byte("token-of-"+id), 0o400)
		for _, p := range []string{dir, filepath.Join(dir, "token")} {
			os.Chown(p, int(u.UID), int(u.GID))
		}
		target, out := testLog(t, id)
		task, err := r.Start(context.Background(), &Spec{
			ID: id, Command: command, RunDir: dir, EnvFile: "env", HushBinary: os.Args[0], User: u,
			Log: target, Event: func(string, string) {},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { task.Delete(context.Background()) })
		return out, task
	}

	_, holder := start("alice", "sleep 1000")
	check := fmt.Sprintf(`id -u; echo "$SECRET"; cat token; echo; cat %[1]s/runs/alice/token %[1]s/runs/alice/env
ls %[1]s/runs; test -x %[1]s/bin/hush && echo binary; command -v hush; pwd; umask`, state)
	out, task := start("bob", check)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := task.Wait(ctx)
	got := out()
	want := fmt.Sprintf(`310301
value-of-bob
token-of-bob
cat: %[1]s/runs/alice/token: No such file or directory
cat: %[1]s/runs/alice/env: No such file or directory
bob
binary
%[1]s/bin/hush
%[1]s/runs/bob
0077
`, state)
	if err != nil || code != 0 || got != want {
		t.Errorf("got exit %d (%v) and output:\n%s\nwant exit 0 and:\n%s", code, err, got, want)
	}
	if err := holder.Stop(context.Background(), time.Second); err != nil {
		t.Error(err)
	}
	if code, err := holder.Wait(ctx); err != nil || code != 128+int(syscall.SIGTERM) {
		t.Errorf("stopped workload: got exit %d (%v), want %d", code, err, 128+int(syscall.SIGTERM))
	}
	if strings.Contains(got, "value-of-alice") || strings.Contains(got, "token-of-alice") {
		t.Error("bob's workload read alice's secrets")
	}
}
