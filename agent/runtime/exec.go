package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Exec runs workloads as host processes, for machines without containerd.
// It ignores the image, and secret files stay on the run's tmpfs: the
// environment variables that name them point there.
type Exec struct {
	logger hclog.Logger
}

var _ Runtime = (*Exec)(nil)

// NewExec returns the exec runtime.
func NewExec(logger hclog.Logger) *Exec { return &Exec{logger: logger} }

// Name returns "exec".
func (r *Exec) Name() string { return "exec" }

// Isolated reports that workloads share the host's filesystem.
func (r *Exec) Isolated() bool { return false }

// Close does nothing.
func (r *Exec) Close() error { return nil }

// Cleanup does nothing: exec workloads die with the agent.
func (r *Exec) Cleanup(context.Context, func(string) bool) error { return nil }

// Start starts the command in its own process group, through the hush
// entrypoint that reads the secret variables from the tmpfs.
func (r *Exec) Start(_ context.Context, spec *Spec) (Task, error) {
	if spec.GPUs > 0 {
		return nil, fmt.Errorf("the run asks for %d GPUs, but the exec runtime cannot assign GPUs", spec.GPUs)
	}
	if spec.Image != "" {
		spec.Event("runtime", fmt.Sprintf("the exec runtime runs the command on the host and ignores image %s", spec.Image))
	}
	cmd := exec.Command(spec.HushBinary, "_entrypoint", "--env-file", filepath.Join(spec.RunDir, spec.EnvFile),
		"--", "/bin/sh", "-c", spec.Command)
	env := spec.Env
	binDir := filepath.Dir(spec.HushBinary)
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
	cmd.Stdout, cmd.Stderr = spec.Output, spec.Output
	// Its own process group, so that a stop reaches everything the command
	// started; and killed with the agent, so nothing is orphaned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start command: %w", err)
	}
	t := &execTask{cmd: cmd, done: make(chan struct{})}
	go func() {
		t.err = cmd.Wait()
		close(t.done)
	}()
	return t, nil
}

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
	case t.err == nil:
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
	// The negative pid addresses the whole process group.
	syscall.Kill(-t.cmd.Process.Pid, sig)
}

func (t *execTask) Stop(ctx context.Context, grace time.Duration) error {
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
	b, err := os.ReadFile(envFile)
	if err != nil {
		return fmt.Errorf("read secret environment: %w", err)
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
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return syscall.Exec(bin, argv, env)
}
