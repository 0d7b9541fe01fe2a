package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"golang.org/x/sys/unix"
)

// The files of a run's supervisor dir, which only root (or the agent's
// user) can read, and which a sandboxed workload cannot even see: it lies
// in the state dir that the sandbox hides.
const (
	// supervisorFile holds the supervisor's supervisorState, written by the
	// supervisor before it starts the workload.
	supervisorFile = "supervisor.json"
	// exitFile holds the workload's exitStatus, written by the supervisor
	// once the workload has exited and its log is complete.
	exitFile = "exit.json"
	// supervisorLogFile receives the supervisor's own log (its stderr).
	supervisorLogFile = "supervisor.log"
)

// supervisorState names a run's supervisor process and the user its
// workload runs as.
type supervisorState struct {
	PID int `json:"pid"`
	// StartTime (clock ticks after boot, /proc/PID/stat) and BootID tell
	// the supervisor from a later process that was given its pid.
	StartTime uint64 `json:"start_time"`
	BootID    string `json:"boot_id"`
	// UID and GID are the workload's user; zero for the supervisor's own.
	UID uint32 `json:"uid,omitempty"`
	GID uint32 `json:"gid,omitempty"`
}

// exitStatus is how a run's workload ended.
type exitStatus struct {
	// Code is the exit code, 128+N for a workload killed by signal N.
	Code int `json:"code"`
	// Error says why the supervisor could not learn how the workload ended.
	Error string `json:"error,omitempty"`
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return store.WriteFileAtomic(path, b, 0o600)
}

// readJSON reads what writeJSON wrote; a missing file is an error that
// matches os.ErrNotExist.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// currentBootID returns the kernel's id of this boot.
func currentBootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return string(bytes.TrimSpace(b))
}

// procStat returns the state letter and start time of process pid, from
// /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// PID (COMM) STATE PPID ...: COMM may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// Field 3 (the state) is fields[0]; field 22 (the start time) is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], start, nil
}

// selfState returns the supervisorState of the calling process.
func selfState() (supervisorState, error) {
	pid := os.Getpid()
	_, start, err := procStat(pid)
	if err != nil {
		return supervisorState{}, err
	}
	return supervisorState{PID: pid, StartTime: start, BootID: currentBootID()}, nil
}

// supervisorProc is a run's supervisor as the agent sees it: a process
// that need not be the agent's child, reached through a pidfd where the
// kernel has them (Linux 5.3) so that a pid taken by another process is
// never signalled.
type supervisorProc struct {
	state supervisorState
	mu    sync.Mutex
	pidfd int // -1 without one
}

func newSupervisorProc(st supervisorState) *supervisorProc {
	return &supervisorProc{state: st, pidfd: -1}
}

// attachSupervisor returns the supervisor that st names, and whether it
// is still running.
func attachSupervisor(st supervisorState) (*supervisorProc, bool) {
	p := newSupervisorProc(st)
	if st.BootID != currentBootID() {
		return p, false
	}
	// The pidfd first: if the pid's process is still the supervisor after,
	// the pidfd is the supervisor's.
	if fd, err := unix.PidfdOpen(st.PID, 0); err == nil {
		p.pidfd = fd
	}
	if !p.sameProcess() {
		p.close()
		return p, false
	}
	return p, true
}

// sameProcess reports whether the supervisor's pid still belongs to it
// and it has not exited.
func (p *supervisorProc) sameProcess() bool {
	state, start, err := procStat(p.state.PID)
	return err == nil && start == p.state.StartTime && state != 'Z' && state != 'X'
}

// signal sends sig to the supervisor, if it is still running.
func (p *supervisorProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
		return
	}
	if p.sameProcess() {
		syscall.Kill(p.state.PID, sig)
	}
}

// wait blocks until the supervisor has exited.
func (p *supervisorProc) wait() {
	p.mu.Lock()
	pidfd := p.pidfd
	p.mu.Unlock()
	if pidfd < 0 {
		for p.sameProcess() {
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	// A pidfd becomes readable when its process exits, whether or not it
	// is our child.
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, -1)
		switch {
		case err == nil && n > 0:
			return
		case err != nil && !errors.Is(err, unix.EINTR):
			for p.sameProcess() {
				time.Sleep(100 * time.Millisecond)
			}
			return
		}
	}
}

// terminate kills the supervisor's workload, and the supervisor itself if
// it is still there after grace, waits until it has exited, and releases
// it: one wait, so that the pidfd is closed only once nothing polls it.
func (p *supervisorProc) terminate(grace time.Duration) {
	done := make(chan struct{})
	go func() { p.wait(); close(done) }()
	p.signal(sigKill)
	select {
	case <-done:
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-done
	}
	p.close()
}

// close releases the pidfd; not while wait runs.
func (p *supervisorProc) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}
