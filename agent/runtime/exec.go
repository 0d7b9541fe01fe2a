package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
// Each workload has a supervisor of its own (SuperviseCommand), which owns
// the process, its log and its exit status, so that the workload outlives
// the agent and a later agent adopts it; the supervisors keep their state
// in dirs under the runtime's supervisor dir.
//
// With a sandbox (NewSandboxedExec) each workload runs as an unprivileged
// user, in a session and a mount namespace of its own where the agent's
// state dir holds only the run's own tmpfs and the hush binary. Without
// one, workloads run as the agent's user and can read each other's files.
type Exec struct {
	logger  hclog.Logger
	sandbox *ExecSandbox

	// dir holds a dir per run with its supervisor's state. Without one
	// (NewExec) each run's state goes in a temporary dir of its own.
	dir string

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
// user, which isolates runs from each other only if the agent does. It
// keeps each supervisor's state in a temporary dir, where no other
// instance finds it to adopt the run: an agent uses NewExecIn.
func NewExec(logger hclog.Logger) *Exec {
	return &Exec{logger: logger, uids: map[string]uint32{}, held: map[uint32]bool{}}
}

// NewExecIn returns the exec runtime that runs workloads as the agent's
// own user and keeps its supervisors' state in dir, where an instance
// started later on the same dir finds the runs to adopt.
func NewExecIn(logger hclog.Logger, dir string) (*Exec, error) {
	if err := makeSupervisorDir(dir); err != nil {
		return nil, err
	}
	r := NewExec(logger)
	r.dir = dir
	return r, nil
}

// NewSandboxedExec returns the exec runtime that runs each workload as the
// unprivileged user that sb gives it, and keeps its supervisors' state in
// dir, which must lie in sb.StateDir so that workloads cannot see it. The
// agent must be root.
func NewSandboxedExec(logger hclog.Logger, dir string, sb ExecSandbox) (*Exec, error) {
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
	if rel, err := filepath.Rel(sb.StateDir, dir); err != nil || !filepath.IsLocal(rel) || rel == "." {
		return nil, fmt.Errorf("supervisor dir %s is not inside state dir %s, which workloads cannot see", dir, sb.StateDir)
	}
	r, err := NewExecIn(logger, dir)
	if err != nil {
		return nil, err
	}
	r.sandbox = &sb
	return r, nil
}

// makeSupervisorDir makes dir, readable by the agent's user alone.
func makeSupervisorDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("supervisor dir %q is not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create supervisor dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict supervisor dir: %w", err)
	}
	return nil
}

// Name returns "exec".
func (r *Exec) Name() string { return "exec" }

// Isolated reports that workloads share the host's filesystem.
func (r *Exec) Isolated() bool { return false }

// RunsAsOtherUsers reports whether workloads run as users other than the
// agent's, and thus whether runs are kept apart at all.
func (r *Exec) RunsAsOtherUsers() bool { return r.sandbox != nil }

// Close does nothing: workloads run on, each with its supervisor.
func (r *Exec) Close() error { return nil }

// supervisorDir returns the dir that holds the supervisor state of run
// id, or "" when the runtime keeps no state to adopt runs from.
func (r *Exec) supervisorDir(id string) (string, error) {
	if !filepath.IsLocal(id) || strings.ContainsRune(id, filepath.Separator) {
		return "", fmt.Errorf("run id %q cannot name a dir", id)
	}
	if r.dir == "" {
		return "", nil
	}
	return filepath.Join(r.dir, id), nil
}

// Start starts the run's supervisor, which starts the command through the
// hush entrypoint, which reads the secret variables from the tmpfs; the
// command runs in a session of its own so that a stop reaches everything
// it started. In a sandbox the entrypoint starts as root in a new mount
// namespace, hides the state dir and takes on the run's user before it
// runs the command.
func (r *Exec) Start(ctx context.Context, spec *Spec) (Task, error) {
	if spec.GPUs > 0 {
		return nil, fmt.Errorf("the run asks for %s, but the exec runtime cannot assign GPUs", gpuCount(spec.GPUs))
	}
	if r.sandbox != nil && spec.User == nil {
		return nil, errors.New("start run: no user assigned to it")
	}
	if spec.Image != "" {
		spec.Event("runtime", fmt.Sprintf("the exec runtime runs the command on the host and ignores image %s", spec.Image))
	}
	args := []string{spec.HushBinary, EntrypointCommand, "--env-file", filepath.Join(spec.RunDir, spec.EnvFile)}
	binDir := filepath.Dir(spec.HushBinary)
	sup := superviseSpec{Dir: spec.RunDir, Log: spec.Log}
	if r.sandbox != nil {
		args = append(args, "--state-dir", r.sandbox.StateDir, "--run-dir", spec.RunDir,
			"--uid", strconv.FormatUint(uint64(spec.User.UID), 10), "--gid", strconv.FormatUint(uint64(spec.User.GID), 10))
		binDir = filepath.Join(r.sandbox.StateDir, SandboxBinDir)
		sup.Sandboxed, sup.UID, sup.GID = true, spec.User.UID, spec.User.GID
	}
	sup.Argv = append(args, "--", "/bin/sh", "-c", spec.Command)
	env := slices.Clone(spec.Env)
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
	sup.Env = env

	dir, err := r.supervisorDir(spec.ID)
	if err == nil && dir == "" {
		dir, err = os.MkdirTemp("", "hush-exec-")
	} else if err == nil {
		err = os.Mkdir(dir, 0o700)
	}
	if err != nil {
		return nil, fmt.Errorf("start run: create its supervisor dir: %w", err)
	}
	t, err := r.supervise(ctx, spec.HushBinary, dir, sup)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

// Adopt returns the task of run id from its supervisor's state: running,
// or ended with its exit status recorded while no agent watched. In a
// sandbox the run's uid is reserved again. It returns an error matching
// ErrNoWorkload when the run has no supervisor state, or its supervisor
// died without recording how the workload ended.
func (r *Exec) Adopt(_ context.Context, id string) (Task, error) {
	dir, err := r.supervisorDir(id)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("adopt run %s: %w: this exec runtime keeps no supervisor state", id, ErrNoWorkload)
	}
	var st supervisorState
	if err := readJSON(filepath.Join(dir, supervisorFile), &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("adopt run %s: %w: no supervisor state", id, ErrNoWorkload)
		}
		return nil, fmt.Errorf("adopt run %s: %w", id, err)
	}
	proc, alive := attachSupervisor(st)
	logger := r.logger.With("run_id", id)
	if alive {
		r.reserveUser(id, st.UID)
		t := newSupervisedTask(logger, dir, proc)
		go t.finish(proc.wait)
		return t, nil
	}
	var status exitStatus
	if err := readJSON(filepath.Join(dir, exitFile), &status); err != nil {
		logSupervisor(logger, dir)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("adopt run %s: %w: its supervisor exited without recording how the workload ended", id, ErrNoWorkload)
	}
	r.reserveUser(id, st.UID)
	t := newSupervisedTask(logger, dir, proc)
	t.finish(func() {})
	return t, nil
}

// outputDrain is how long the output of an exec workload is still read
// after its command has exited.
const outputDrain = 2 * time.Second

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
