package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// supervisorGrace is how long a supervisor has to end its workload and
// close its log once told to, before it is killed.
const supervisorGrace = outputDrain + 8*time.Second

// supervise starts the supervisor of a run with its state in dir, and
// returns the run's task once the supervisor reports that the workload
// runs. The supervisor is the agent's child only by birth: it is in a
// session of its own, with no parent-death signal, and its stdio is
// /dev/null and a log file.
func (r *Exec) supervise(ctx context.Context, hushBinary, dir string, sup superviseSpec) (*supervisedTask, error) {
	body, err := json.Marshal(sup)
	if err != nil {
		return nil, err
	}
	stderr, err := os.OpenFile(filepath.Join(dir, supervisorLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create supervisor log: %w", err)
	}
	defer stderr.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the run's supervisor: %w", err)
	}
	defer readyR.Close()
	cmd := exec.Command(hushBinary, SuperviseCommand, dir)
	cmd.Env, cmd.Dir = []string{}, "/"
	cmd.Stdin, cmd.Stderr = bytes.NewReader(body), stderr
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start the run's supervisor: %w", err)
	}
	logger := r.logger.With("run_id", sup.Log.ID)
	// Only the agent may reap it: until then its pid is its own.
	pid := cmd.Process.Pid
	_, start, err := procStat(pid)
	if err != nil {
		// Without its start time the supervisor could not be told from
		// a later process with its pid: it must not go on.
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("start the run's supervisor: %w", err)
	}
	proc := newSupervisorProc(supervisorState{PID: pid, StartTime: start, BootID: currentBootID()})
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		proc.pidfd = fd
	}

	reply := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(readyR, 64<<10))
		reply <- b
	}()
	var msg []byte
	select {
	case msg = <-reply:
	case <-ctx.Done():
		// The workload dies with the supervisor, which has not reported.
		cmd.Process.Kill()
		cmd.Wait()
		proc.close()
		return nil, ctx.Err()
	}
	if string(msg) != superviseOK {
		waitErr := cmd.Wait()
		proc.close()
		if len(msg) == 0 {
			logSupervisor(logger, dir)
			return nil, fmt.Errorf("start the run's supervisor: it exited (%v) before it started the workload", waitErr)
		}
		return nil, errors.New(string(msg))
	}
	t := newSupervisedTask(logger, dir, proc)
	go t.finish(func() { cmd.Wait() })
	return t, nil
}

// supervisedTask is an exec workload seen through its supervisor, which
// the agent may have started or adopted.
type supervisedTask struct {
	logger hclog.Logger
	dir    string
	proc   *supervisorProc
	done   chan struct{} // closed once the supervisor has exited
	code   int
	err    error
	once   sync.Once
}

func newSupervisedTask(logger hclog.Logger, dir string, proc *supervisorProc) *supervisedTask {
	return &supervisedTask{logger: logger, dir: dir, proc: proc, done: make(chan struct{})}
}

// finish waits with wait for the supervisor to exit, then reads the exit
// status it recorded.
func (t *supervisedTask) finish(wait func()) {
	wait()
	var status exitStatus
	switch err := readJSON(filepath.Join(t.dir, exitFile), &status); {
	case err != nil:
		t.code, t.err = -1, fmt.Errorf("the run's supervisor exited without recording how the workload ended: %w", err)
	case status.Error != "":
		t.code, t.err = -1, errors.New(status.Error)
	default:
		t.code = status.Code
	}
	close(t.done)
}

func (t *supervisedTask) Wait(ctx context.Context) (int, error) {
	select {
	case <-t.done:
		return t.code, t.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

func (t *supervisedTask) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-t.done:
		return nil
	default:
	}
	t.proc.signal(sigStop)
	select {
	case <-t.done:
	case <-time.After(grace):
		t.proc.signal(sigKill)
	case <-ctx.Done():
		t.proc.signal(sigKill)
		return ctx.Err()
	}
	return nil
}

// Signal asks the supervisor to pass sig on to the workload.
func (t *supervisedTask) Signal(_ context.Context, sig syscall.Signal) error {
	relay, ok := relaySignal(sig)
	if !ok {
		return fmt.Errorf("the exec runtime does not pass %v on to workloads", sig)
	}
	select {
	case <-t.done:
	default:
		t.proc.signal(relay)
	}
	return nil
}

// Delete kills what is left of the workload, waits for the supervisor to
// close the log and exit, and removes its state.
func (t *supervisedTask) Delete(context.Context) error {
	t.once.Do(func() {
		select {
		case <-t.done:
		default:
			t.proc.signal(sigKill)
			select {
			case <-t.done:
			case <-time.After(supervisorGrace):
				t.logger.Warn("the run's supervisor did not exit when told to; killing it", "pid", t.proc.state.PID)
				t.proc.signal(syscall.SIGKILL)
				<-t.done
			}
		}
		t.proc.close()
		logSupervisor(t.logger, t.dir)
		os.RemoveAll(t.dir)
	})
	return nil
}

// logSupervisor passes on what a run's supervisor logged, which is only
// ever about itself: it never sees secret values.
func logSupervisor(logger hclog.Logger, dir string) {
	b, _ := os.ReadFile(filepath.Join(dir, supervisorLogFile))
	if s := strings.TrimSpace(string(b)); s != "" {
		logger.Warn("the run's supervisor logged problems", "log", s)
	}
}
