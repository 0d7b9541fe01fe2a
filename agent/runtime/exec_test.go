package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func sandboxedExec(t *testing.T, first, last uint32) *Exec {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching runs to other users needs root")
	}
	state := t.TempDir()
	r, err := NewSandboxedExec(hclog.NewNullLogger(), filepath.Join(state, "exec"), ExecSandbox{StateDir: state, FirstUID: first, LastUID: last})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAssignUser(t *testing.T) {
	r := sandboxedExec(t, 310000, 310002)
	assign := func(id string) uint32 {
		t.Helper()
		u, err := r.AssignUser(id)
		if err != nil {
			t.Fatal(err)
		}
		if u.GID != u.UID {
			t.Errorf("got gid %d for uid %d, want the same number", u.GID, u.UID)
		}
		return u.UID
	}
	for i, id := range []string{"a", "b", "c"} {
		if got, want := assign(id), uint32(310000+i); got != want {
			t.Errorf("run %s: got uid %d, want %d", id, got, want)
		}
	}
	if got := assign("b"); got != 310001 {
		t.Errorf("run b again: got uid %d, want its own, 310001", got)
	}
	if _, err := r.AssignUser("d"); err == nil || !strings.Contains(err.Error(), "all 3 uids of the exec runtime's uid_range (310000-310002) belong to active runs") {
		t.Errorf("with the range used up: got %v", err)
	}
	freed := assign("b")
	r.ReleaseUser("b")
	if got := assign("d"); got != freed {
		t.Errorf("after a release: got uid %d, want the lowest free one, %d", got, freed)
	}
	r.ReleaseUser("never-assigned") // no effect, no panic
}

func TestSharedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching runs to other users needs root")
	}
	state := t.TempDir()
	r, err := NewSandboxedExec(hclog.NewNullLogger(), filepath.Join(state, "exec"), ExecSandbox{StateDir: state, User: &User{UID: 65534, GID: 65534}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.AssignUser("a")
	b, _ := r.AssignUser("b")
	if *a != (User{65534, 65534}) || *b != *a {
		t.Errorf("got %v and %v, want the configured user for both", a, b)
	}
	if u, err := NewExec(hclog.NewNullLogger()).AssignUser("a"); u != nil || err != nil {
		t.Errorf("without a sandbox: got %v, %v; want no user", u, err)
	}
}

// A process that leaves the run's session (a daemon) must not outlive the
// run: the next run given the uid would find it.
func TestReleaseUserKillsLeftovers(t *testing.T) {
	r := sandboxedExec(t, 310100, 310100)
	u, err := r.AssignUser("run")
	if err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command("/bin/sleep", "1000")
	daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	r.ReleaseUser("run")
	select {
	case err := <-exited:
		if ws, ok := daemon.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the daemon ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		daemon.Process.Kill()
		t.Fatal("the run's daemon outlived the release of its uid")
	}
	if got, _ := r.AssignUser("next"); got.UID != u.UID {
		t.Errorf("got uid %d, want the released %d", got.UID, u.UID)
	}
}

// The entrypoint must never hide the state dir of the agent's own mount
// namespace: every other run would lose its tmpfs.
func TestSandboxNeedsItsOwnMountNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	state := t.TempDir()
	run := filepath.Join(state, "runs", "r1")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(run, "env")
	os.WriteFile(envFile, nil, 0o400)
	done := make(chan error)
	// On a goroutine of its own: the entrypoint locks its thread.
	go func() {
		done <- SandboxedEntrypoint(envFile, Sandbox{StateDir: state, RunDir: run, UID: 310200, GID: 310200}, []string{"true"})
	}()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "not started in a mount namespace of its own") {
		t.Errorf("got %v, want a refusal", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), state) {
		t.Errorf("the entrypoint mounted over the state dir:\n%s", mounts)
	}
}

func TestCheckSandboxPath(t *testing.T) {
	open := t.TempDir()
	closed := filepath.Join(open, "closed")
	for dir, mode := range map[string]os.FileMode{open: 0o755, closed: 0o700} {
		if err := os.MkdirAll(dir, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, mode)
	}
	os.Chmod(filepath.Dir(open), 0o755)
	tests := map[string]struct {
		stateDir string
		private  []string
		want     string
	}{
		"reachable":        {stateDir: filepath.Join(open, "state")},
		"under a 0700 dir": {stateDir: filepath.Join(closed, "state"), want: "is mode 0700; let others search it (chmod o+x " + closed + ")"},
		"made anew":        {stateDir: filepath.Join(closed, "state"), private: []string{open}},
		"missing":          {stateDir: filepath.Join(open, "nope", "state"), want: "no such file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkSandboxPath(tc.stateDir, tc.private)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/tab\011`: "/tab\t", `/x\`: `/x\`} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestExecRefusesGPUs checks that a run asking for GPUs is refused, in
// words that count them right.
func TestExecRefusesGPUs(t *testing.T) {
	tests := map[string]struct {
		gpus int
		want string
	}{
		"one": {1, "the run asks for 1 GPU, but the exec runtime cannot assign GPUs"},
		"two": {2, "the run asks for 2 GPUs, but the exec runtime cannot assign GPUs"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewExec(hclog.NewNullLogger()).Start(t.Context(), &Spec{GPUs: tc.gpus})
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
