package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Exec runs workloads as host processes, for machines without containerd.
// It ignores the image, and secret files stay on the run's tmpfs: the
// environment variables that name them point there.
//
// With a sandbox (NewSandboxedExec) each workload runs as an unprivileged
// user, in a session and a mount namespace of its own where the agent's
// state dir holds only the run's own tmpfs and the hush binary. Without
// one, workloads run as the agent's user and can read each other's files.
type Exec struct {
	logger  hclog.Logger
	sandbox *ExecSandbox

	mu sync.Mutex
	// uids holds the uid of each active run, with a per-run uid range.
	uids map[string]uint32
	// held holds the uids in uids, for the lookup of a free one.
	held map[uint32]bool
}

// ExecSandbox says which users the exec runtime's workloads run as.
type ExecSandbox struct {
	// StateDir is the agent's state dir, under which every run's tmpfs
	// lies. Workloads see in its place a fresh tmpfs with only their own
	// run dir and the hush binary, at StateDir/bin/hush.
	StateDir string
	// FirstUID and LastUID bound the uids handed to runs: each active
	// run gets the lowest one no other active run holds, with the gid of
	// the same number. Unused when User is set.
	FirstUID, LastUID uint32
	// User, when not nil, is the one user that every run executes as.
	User *User
}

var (
	_ Runtime      = (*Exec)(nil)
	_ UserAssigner = (*Exec)(nil)
)

// NewExec returns the exec runtime that runs workloads as the agent's own
// user, which isolates runs from each other only if the agent does.
func NewExec(logger hclog.Logger) *Exec { return &Exec{logger: logger} }

// NewSandboxedExec returns the exec runtime that runs each workload as the
// unprivileged user that sb gives it. The agent must be root.
func NewSandboxedExec(logger hclog.Logger, sb ExecSandbox) (*Exec, error) {
	switch {
	case os.Geteuid() != 0:
		return nil, errors.New("the exec runtime can switch runs to other users only when the agent runs as root")
	case !filepath.IsAbs(sb.StateDir):
		return nil, fmt.Errorf("state dir %q is not an absolute path", sb.StateDir)
	case sb.User == nil && (sb.FirstUID == 0 || sb.FirstUID > sb.LastUID):
		return nil, fmt.Errorf("uid range %d-%d is empty or includes root", sb.FirstUID, sb.LastUID)
	case sb.User != nil && (sb.User.UID == 0 || sb.User.GID == 0):
		return nil, errors.New("the run user must not be root or in its group")
	}
	return &Exec{logger: logger, sandbox: &sb, uids: map[string]uint32{}, held: map[uint32]bool{}}, nil
}

// Name returns "exec".
func (r *Exec) Name() string { return "exec" }

// Isolated reports that workloads share the host's filesystem.
func (r *Exec) Isolated() bool { return false }

// RunsAsOtherUsers reports whether workloads run as users other than the
// agent's, and thus whether runs are kept apart at all.
func (r *Exec) RunsAsOtherUsers() bool { return r.sandbox != nil }

// Adopt finds no workload: this runtime cannot yet adopt what an earlier
// agent started.
func (r *Exec) Adopt(context.Context, string) (Task, error) { return nil, ErrNoWorkload }

// Close does nothing.
func (r *Exec) Close() error { return nil }

// Start starts the command through the hush entrypoint, which reads the
// secret variables from the tmpfs, in a session of its own so that a stop
// reaches everything the command started. In a sandbox the entrypoint
// starts as root in a new mount namespace, hides the state dir and takes
// on the run's user before it runs the command.
func (r *Exec) Start(_ context.Context, spec *Spec) (Task, error) {
	if spec.GPUs > 0 {
		return nil, fmt.Errorf("the run asks for %d GPUs, but the exec runtime cannot assign GPUs", spec.GPUs)
	}
	if r.sandbox != nil && spec.User == nil {
		return nil, errors.New("start run: no user assigned to it")
	}
	if spec.Image != "" {
		spec.Event("runtime", fmt.Sprintf("the exec runtime runs the command on the host and ignores image %s", spec.Image))
	}
	args := []string{"_entrypoint", "--env-file", filepath.Join(spec.RunDir, spec.EnvFile)}
	binDir := filepath.Dir(spec.HushBinary)
	// The command dies with the agent. What it started does not (the
	// parent-death signal is not inherited): in a sandbox, the release of
	// the run's uid or the next agent's Cleanup ends those.
	attr := &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if r.sandbox != nil {
		args = append(args, "--state-dir", r.sandbox.StateDir, "--run-dir", spec.RunDir,
			"--uid", strconv.FormatUint(uint64(spec.User.UID), 10), "--gid", strconv.FormatUint(uint64(spec.User.GID), 10))
		binDir = filepath.Join(r.sandbox.StateDir, SandboxBinDir)
		// Go makes every mount private in the new namespace, so what the
		// entrypoint mounts stays inside it. Its own IPC namespace keeps
		// the SysV shared memory and queues it makes from a later run
		// given the same uid.
		attr.Unshareflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC
	}
	cmd := exec.Command(spec.HushBinary, append(args, "--", "/bin/sh", "-c", spec.Command)...)
	env := spec.Env
	hasPath := false
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + binDir + ":" + v
			hasPath = true
		}
	}
	if !hasPath {
		env = append(env, "PATH="+binDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	cmd.Env = env
	cmd.Dir = spec.RunDir
	log, err := spec.Log.Create(r.logger.With("run_id", spec.ID))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	// The run ends when its command does, as a container ends with its
	// first process: a process that left the session and still holds the
	// output pipe gets outputDrain to finish writing, and then loses it.
	cmd.WaitDelay = outputDrain
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start command: %w", err)
	}
	t := &execTask{cmd: cmd, done: make(chan struct{})}
	go func() {
		t.err = cmd.Wait()
		log.Close()
		close(t.done)
	}()
	return t, nil
}

// outputDrain is how long the output of an exec workload is still read
// after its command has exited.
const outputDrain = 2 * time.Second

type execTask struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

func (t *execTask) Wait(ctx context.Context) (int, error) {
	select {
	case <-t.done:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	var exitErr *exec.ExitError
	switch {
	case t.err == nil, errors.Is(t.err, exec.ErrWaitDelay) && t.cmd.ProcessState.Success():
		return 0, nil
	case errors.As(t.err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	return -1, t.err
}

func (t *execTask) signal(sig syscall.Signal) {
	// The negative pid addresses the whole process group: the session
	// leader's, which everything the command starts joins unless it
	// leaves; a sandbox's ReleaseUser ends those that left.
	syscall.Kill(-t.cmd.Process.Pid, sig)
}

func (t *execTask) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-t.done:
		// Its group may be gone and its id taken by another.
		return nil
	default:
	}
	t.signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(grace):
		t.signal(syscall.SIGKILL)
	case <-ctx.Done():
		t.signal(syscall.SIGKILL)
		return ctx.Err()
	}
	return nil
}

func (t *execTask) Delete(context.Context) error {
	t.once.Do(func() {
		select {
		case <-t.done:
		default:
			t.signal(syscall.SIGKILL)
			<-t.done
		}
	})
	return nil
}

// Entrypoint is what runs first in every workload: it adds the secret
// variables in envFile (KEY=VALUE entries separated by NUL bytes) to the
// environment and replaces itself with argv. Secret values thus never
// appear in the container spec that containerd keeps on disk.
func Entrypoint(envFile string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command to run")
	}
	env, err := secretEnviron(envFile)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return syscall.Exec(bin, argv, env)
}

// secretEnviron returns the process's environment with the secret
// variables in envFile added.
func secretEnviron(envFile string) ([]string, error) {
	b, err := os.ReadFile(envFile)
	if err != nil {
		return nil, fmt.Errorf("read secret environment: %w", err)
	}
	// A secret variable replaces one of the same name from the image; the
	// agent has already dropped secrets that the run's own env overrides.
	secret := map[string]string{}
	var keys []string
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, _, ok := strings.Cut(kv, "="); ok {
			if _, dup := secret[k]; !dup {
				keys = append(keys, k)
			}
			secret[k] = kv
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := secret[k]; !ok {
			env = append(env, kv)
		}
	}
	for _, k := range keys {
		env = append(env, secret[k])
	}
	return env, nil
}
