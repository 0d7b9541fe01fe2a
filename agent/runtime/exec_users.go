package runtime

import (
	"bufio"
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
)

// AssignUser gives run id the lowest uid of the sandbox's range that no
// active run holds, or the sandbox's one user. Without a sandbox it
// returns nil: the workload runs as the agent's user.
func (r *Exec) AssignUser(id string) (*User, error) {
	sb := r.sandbox
	switch {
	case sb == nil:
		return nil, nil
	case sb.User != nil:
		u := *sb.User
		return &u, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if uid, ok := r.uids[id]; ok {
		return &User{UID: uid, GID: uid}, nil
	}
	for uid := sb.FirstUID; ; uid++ {
		if !r.held[uid] {
			r.uids[id], r.held[uid] = uid, true
			return &User{UID: uid, GID: uid}, nil
		}
		if uid == sb.LastUID {
			break
		}
	}
	return nil, fmt.Errorf("all %d uids of the exec runtime's uid_range (%d-%d) belong to active runs: wait for some to end, or widen uid_range",
		uint64(sb.LastUID-sb.FirstUID)+1, sb.FirstUID, sb.LastUID)
}

// ReleaseUser kills every process that still has run id's uid, such as a
// daemon that left the run's session, so that the next run given the uid
// finds nothing of this one running; then it frees the uid. A user shared
// by every run is left alone: other runs' processes have it too.
func (r *Exec) ReleaseUser(id string) {
	if r.sandbox == nil || r.sandbox.User != nil {
		return
	}
	r.mu.Lock()
	uid, ok := r.uids[id]
	r.mu.Unlock()
	if !ok {
		return
	}
	if err := killUser(uid); err != nil {
		// The uid stays held, so no later run shares it with survivors.
		r.logger.Error("could not end the processes of a run's uid; it stays reserved", "run_id", id, "uid", uid, "error", err)
		return
	}
	r.mu.Lock()
	delete(r.uids, id)
	delete(r.held, uid)
	r.mu.Unlock()
}

// reserveUser holds uid for run id again, as a later agent adopts it.
func (r *Exec) reserveUser(id string, uid uint32) {
	sb := r.sandbox
	if sb == nil || sb.User != nil || uid < sb.FirstUID || uid > sb.LastUID {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uids[id], r.held[uid] = uid, true
}

// Cleanup removes what runs from before the agent started left behind,
// unless keep accepts the run: it ends their supervisors (and so their
// workloads) and removes their state; then it kills processes left with
// uids of the sandbox's range that no kept run holds, which would
// otherwise share their uid with new runs.
func (r *Exec) Cleanup(_ context.Context, keep func(string) bool) error {
	errs := []error{r.cleanupSupervisors(keep)}
	if r.sandbox == nil || r.sandbox.User != nil {
		return errors.Join(errs...)
	}
	uids, err := processUIDs()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for uid := range uids {
		r.mu.Lock()
		held := r.held[uid]
		r.mu.Unlock()
		if held || uid < r.sandbox.FirstUID || uid > r.sandbox.LastUID {
			continue
		}
		r.logger.Warn("killing processes left by an earlier run", "uid", uid)
		if err := killUser(uid); err != nil {
			// Reserved for good, so that no run shares it with survivors.
			r.mu.Lock()
			r.held[uid] = true
			r.mu.Unlock()
			errs = append(errs, fmt.Errorf("%w; uid %d stays reserved", err, uid))
		}
	}
	return errors.Join(errs...)
}

// cleanupSupervisors ends the supervisors of runs that keep does not
// accept, all at once, and removes their state. Those it accepts keep
// their uids.
func (r *Exec) cleanupSupervisors(keep func(string) bool) error {
	dir := r.dir
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list supervisors: %w", err)
	}
	var wg sync.WaitGroup
	var gone []string
	for _, e := range entries {
		id := e.Name()
		var st supervisorState
		hasState := readJSON(filepath.Join(dir, id, supervisorFile), &st) == nil
		if keep(id) {
			if hasState {
				r.reserveUser(id, st.UID)
			}
			continue
		}
		gone = append(gone, id)
		if !hasState {
			continue
		}
		if proc, alive := attachSupervisor(st); alive {
			r.logger.Warn("ending the workload of a run that no longer exists", "run_id", id, "pid", st.PID)
			wg.Go(func() { proc.terminate(supervisorGrace) })
		}
	}
	wg.Wait()
	var errs []error
	for _, id := range gone {
		if err := os.RemoveAll(filepath.Join(dir, id)); err != nil {
			errs = append(errs, fmt.Errorf("remove supervisor state: %w", err))
			continue
		}
		r.logger.Info("removed the supervisor state of an earlier run", "run_id", id)
	}
	return errors.Join(errs...)
}

// killUser sends SIGKILL to every process of uid. A shell that runs as uid
// sends kill(-1): that reaches exactly the processes whose real or saved
// uid is uid (but not the shell), and, unlike a walk of /proc, none of
// them can fork away from it meanwhile. (Taking on uid in one thread of
// the agent instead could leave the agent's main thread with it.)
func killUser(uid uint32) error {
	cmd := exec.Command("/bin/sh", "-c", "kill -KILL -1 2>/dev/null || true")
	cmd.Env, cmd.Dir = []string{}, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kill the processes of uid %d: %w: %s", uid, err, out)
	}
	return nil
}

// processUIDs returns the real uids of the host's processes.
func processUIDs() (map[uint32]bool, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	uids := map[uint32]bool{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // it has exited
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// Uid:	real	effective	saved	filesystem
			if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					if uid, err := strconv.ParseUint(f[0], 10, 32); err == nil {
						uids[uint32(uid)] = true
					}
				}
				break
			}
		}
		f.Close()
	}
	return uids, nil
}
