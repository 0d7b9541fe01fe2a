package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runlog"
	"golang.org/x/sys/unix"
)

// SuperviseCommand is the hidden hush subcommand that owns one exec
// workload, as containerd's shim owns a container: `hush _supervise DIR`.
// The exec runtime starts it in a session of its own, not tied to the
// agent, so that the workload, its log and its exit status outlive an
// agent restart. It reads what to run (superviseSpec, as JSON) from its
// stdin, so that nothing of the run is in its argv or environment, and
// reports on fd 3 whether the workload started: "ok", or why not.
// It keeps its state in DIR (supervisorState, then exitStatus).
//
// Signals: SIGTERM asks the workload to end (it reaches the workload's
// process group as SIGTERM); SIGUSR1 kills the workload's process group.
const SuperviseCommand = "_supervise"

// The signals the exec runtime sends a run's supervisor.
const (
	sigStop = syscall.SIGTERM
	sigKill = syscall.SIGUSR1
	// sigRelay+i asks the supervisor to send relayed[i] to the workload:
	// real-time signals, which nothing else sends it.
	sigRelay = syscall.Signal(40)
)

// relayed are the signals a supervisor passes on to its workload when
// asked, as a run's on_change does.
var relayed = []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGWINCH}

// relaySignal returns the signal that asks a supervisor to pass sig on.
func relaySignal(sig syscall.Signal) (syscall.Signal, bool) {
	for i, s := range relayed {
		if s == sig {
			return sigRelay + syscall.Signal(i), true
		}
	}
	return 0, false
}

// superviseReady is the supervisor's fd on which it reports the start.
const superviseReady = 3

// superviseOK is what the supervisor reports once the workload runs.
const superviseOK = "ok"

// superviseSpec is what a supervisor runs. Secret values are not in it:
// the workload's entrypoint reads them from the run's tmpfs.
type superviseSpec struct {
	// Argv, Env and Dir are the workload's command line (the hush
	// entrypoint's), environment and working dir.
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// Sandboxed starts the workload in mount and IPC namespaces of its
	// own, where the entrypoint builds the sandbox.
	Sandboxed bool `json:"sandboxed,omitempty"`
	// UID and GID are the workload's user, recorded for a later agent.
	UID uint32 `json:"uid,omitempty"`
	GID uint32 `json:"gid,omitempty"`
	// Log is where the workload's output goes.
	Log runlog.Target `json:"log"`
}

// SuperviseMain runs a supervisor with the arguments that follow
// SuperviseCommand and returns its exit code.
func SuperviseMain(args []string, stderr io.Writer) int {
	logger := hclog.New(&hclog.LoggerOptions{Name: "hush-supervisor", Output: stderr, JSONFormat: true})
	if len(args) != 1 || !filepath.IsAbs(args[0]) {
		logger.Error("usage: hush " + SuperviseCommand + " DIR (an absolute path), with the run's spec on stdin")
		return 2
	}
	// The workload must not inherit the report's pipe.
	unix.CloseOnExec(superviseReady)
	ready := os.NewFile(superviseReady, "ready")
	s, err := startSupervised(args[0], logger)
	if err != nil {
		logger.Error("could not start the workload", "error", err)
		ready.WriteString(err.Error())
		ready.Close()
		return 1
	}
	ready.WriteString(superviseOK)
	ready.Close()
	return s.run()
}

// supervised is a workload that a supervisor runs.
type supervised struct {
	dir    string
	logger hclog.Logger
	cmd    *exec.Cmd
	output *os.File // the read end of the workload's stdout and stderr
	log    *runlog.Writer
	sigs   chan os.Signal

	mu     sync.Mutex
	exited bool // the workload has exited: its pid may be reused once reaped
}

// startSupervised reads the spec from stdin, records the supervisor's
// state in dir, and starts the workload with its output going into the
// run's sealed log.
func startSupervised(dir string, logger hclog.Logger) (*supervised, error) {
	// Signals are caught from here on: the agent may send one as soon as
	// the start is reported.
	// Room for a burst of relayed signals, which must not crowd out a
	// stop: Notify drops what does not fit.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, sigStop, sigKill)
	for i := range relayed {
		signal.Notify(sigs, sigRelay+syscall.Signal(i))
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return nil, fmt.Errorf("read the run's spec: %w", err)
	}
	if devnull, err := os.Open(os.DevNull); err == nil {
		unix.Dup3(int(devnull.Fd()), 0, 0)
		devnull.Close()
	}
	var spec superviseSpec
	if err := json.Unmarshal(b, &spec); err != nil || len(spec.Argv) == 0 {
		return nil, fmt.Errorf("read the run's spec: not a spec with a command (%v)", err)
	}
	logger = logger.With("run_id", spec.Log.ID)

	st, err := selfState()
	if err != nil {
		return nil, fmt.Errorf("record the supervisor: %w", err)
	}
	st.UID, st.GID = spec.UID, spec.GID
	if err := writeJSON(filepath.Join(dir, supervisorFile), st); err != nil {
		return nil, fmt.Errorf("record the supervisor: %w", err)
	}
	log, err := spec.Log.Create(logger)
	if err != nil {
		return nil, err
	}
	// One pipe for stdout and stderr, as a terminal would, so that their
	// lines reach the log in the order they were written.
	pr, pw, err := os.Pipe()
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env, cmd.Dir = spec.Env, spec.Dir
	cmd.Stdout, cmd.Stderr = pw, pw
	// A session of its own, so that a stop reaches everything the command
	// started. The workload dies with its supervisor, which leaves nobody
	// to record how it ended; what it started does not (the parent-death
	// signal is not inherited): in a sandbox, the release of the run's uid
	// or the next agent's Cleanup ends those.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if spec.Sandboxed {
		// Go makes every mount private in the new namespace, so what the
		// entrypoint mounts stays inside it. Its own IPC namespace keeps
		// the SysV shared memory and queues it makes from a later run
		// given the same uid.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		log.Close()
		return nil, fmt.Errorf("start command: %w", err)
	}
	return &supervised{dir: dir, logger: logger, cmd: cmd, output: pr, log: log, sigs: sigs}, nil
}

// run forwards signals to the workload until it exits, lets its output
// drain into the log, records how it ended and returns the supervisor's
// exit code.
func (s *supervised) run() int {
	drained := make(chan error, 1)
	go func() { drained <- runlog.Drain(s.log, s.output) }()
	exited := make(chan struct{})
	go func() {
		// Learn of the exit without reaping the workload: until reaped,
		// its pid, which is also its process group's id, stays its own,
		// and a signal forwarded meanwhile cannot reach another group.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, s.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		s.mu.Lock()
		s.exited = true
		s.mu.Unlock()
		close(exited)
	}()
	for waiting := true; waiting; {
		select {
		case sig := <-s.sigs:
			s.forward(sig.(syscall.Signal))
		case <-exited:
			waiting = false
		}
	}
	// A stop that comes while the output drains must not end the
	// supervisor (SIGTERM's default) before it records the exit status.
	signal.Ignore(sigStop, sigKill)
	for i := range relayed {
		// A real-time signal's default is to end the process.
		signal.Ignore(sigRelay + syscall.Signal(i))
	}
	status := exitStatus{Code: -1}
	if err := s.cmd.Wait(); err != nil && !isExitError(err) {
		status.Error = fmt.Sprintf("wait for the workload: %v", err)
	} else {
		status.Code = exitCode(s.cmd.ProcessState)
	}
	// The run ends when its command does, as a container ends with its
	// first process: a process that left the session and still holds the
	// output pipe gets outputDrain to finish writing, and then loses it.
	var err error
	select {
	case err = <-drained:
	case <-time.After(outputDrain):
		s.output.Close()
		err = <-drained
	}
	if err != nil {
		s.logger.Error("run output could not be read", "error", err)
	}
	// Written last: a recorded status says that the log is complete.
	if err := writeJSON(filepath.Join(s.dir, exitFile), status); err != nil {
		s.logger.Error("could not record the workload's exit status", "error", err)
		return 1
	}
	return 0
}

// forward passes a signal from the agent on to the workload's process
// group, or, for a relayed signal, to its first process, as a container's
// is sent one; unless the workload has exited.
func (s *supervised) forward(sig syscall.Signal) {
	target := -s.cmd.Process.Pid
	switch {
	case sig == sigKill:
		sig = syscall.SIGKILL
	case sig >= sigRelay && int(sig-sigRelay) < len(relayed):
		sig, target = relayed[sig-sigRelay], s.cmd.Process.Pid
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exited {
		syscall.Kill(target, sig)
	}
}

func isExitError(err error) bool {
	var exitErr *exec.ExitError
	return errors.As(err, &exitErr)
}

// exitCode returns a process's exit code, 128+N when signal N killed it,
// as a shell reports it.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
