package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

// adoptRetry bounds the wait between tries to adopt a run whose runtime
// could not say whether it has the run's workload.
const adoptRetry = 30 * time.Second

// recover takes over the runs that were active when the agent last
// stopped, as the record of each says:
//   - a run whose workload the runtime still has, running or exited since,
//     is adopted: it keeps its status, token, tmpfs and log, and ends with
//     its real exit code;
//   - a run that had not started is started again;
//   - a run whose workload is gone is LOST.
//
// Then it removes what the runtime holds of runs that are not active.
func (m *Manager) recover(ctx context.Context) error {
	list, err := m.cfg.Store.ListRuns("")
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	var restart []*activeRun
	for _, r := range list {
		// A cluster's servers hold every node's runs: this one takes
		// over its own.
		if r.Status.Done() || r.Scheduled && r.Node != m.cfg.NodeID {
			continue
		}
		task, err := m.cfg.Runtime.Adopt(ctx, r.ID)
		switch {
		case err == nil:
			m.adopt(newActiveRun(r), task)
		case errors.Is(err, runtime.ErrNoWorkload) && !hadStarted(r.Status):
			restart = append(restart, m.reset(newActiveRun(r)))
		case errors.Is(err, runtime.ErrNoWorkload):
			if st := m.halfRestarted(r.ID); st != nil {
				err = m.finishRestart(newActiveRun(r), st)
			} else {
				err = m.lose(r, m.lostMessage(err))
			}
			if err != nil {
				return err
			}
		case m.runtimeDown():
			m.logger.Warn("cannot tell yet whether the runtime still has the run's workload; trying again", "run_id", r.ID, "error", err)
			m.adoptLater(r)
		default:
			if err := m.lose(r, m.lostMessage(err)); err != nil {
				return err
			}
		}
	}
	keep := func(id string) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.active[id] != nil
	}
	if err := m.cfg.Runtime.Cleanup(ctx, keep); err != nil {
		m.logger.Warn("could not remove leftovers of earlier runs", "error", err)
	}
	m.removeLeftovers(list, keep)
	// Runs start again once what their first start left is gone.
	for _, ar := range restart {
		m.enqueue(ar)
		m.activate(ar)
		m.wg.Add(2)
		go m.saver(ar)
		go m.execute(ar)
	}
	return nil
}

// removeLeftovers removes the tmpfs of every run that is not active, and
// the log of every run the store does not hold: what an agent that died
// while it ended or deleted a run left behind.
func (m *Manager) removeLeftovers(list []*store.Run, active func(id string) bool) {
	known := make(map[string]bool, len(list))
	for _, r := range list {
		known[r.ID] = true
	}
	for _, dir := range []struct {
		path, what string
		keep       func(id string) bool
		remove     func(path string) error
	}{
		{m.cfg.StateDir, "secret tmpfs", active, removeTmpfs},
		{m.cfg.LogDir, "log", func(id string) bool { return known[id] }, os.RemoveAll},
	} {
		entries, err := os.ReadDir(dir.path)
		if err != nil {
			m.logger.Warn("could not look for leftovers of earlier runs", "dir", dir.path, "error", err)
			continue
		}
		for _, e := range entries {
			// Only run ids: the state dir holds other things too.
			if _, err := ulid.ParseStrict(e.Name()); err != nil || !e.IsDir() || dir.keep(e.Name()) {
				continue
			}
			path := filepath.Join(dir.path, e.Name())
			if err := dir.remove(path); err != nil {
				m.logger.Warn("could not remove the "+dir.what+" of an earlier run", "run_id", e.Name(), "error", err)
				continue
			}
			m.logger.Info("removed the "+dir.what+" of an earlier run", "run_id", e.Name())
		}
	}
	states, _ := os.ReadDir(filepath.Join(m.cfg.StateDir, runStateDir))
	for _, e := range states {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !active(id) {
			os.Remove(filepath.Join(m.cfg.StateDir, runStateDir, e.Name()))
		}
	}
}

// activate puts a run in the active set, and has its saver record what
// changed while it was not active.
func (m *Manager) activate(ar *activeRun) {
	m.mu.Lock()
	m.active[ar.run.ID] = ar
	m.mu.Unlock()
	select {
	case ar.unsaved <- struct{}{}:
	default:
	}
}

// adopt follows a run whose workload an earlier agent started.
func (m *Manager) adopt(ar *activeRun, task runtime.Task) {
	m.resume(ar)
	m.admit.restore(ar.run)
	m.activate(ar)
	m.wg.Add(2)
	go m.saver(ar)
	go func() {
		defer m.wg.Done()
		m.follow(ar, task)
	}()
	m.logger.Info("run adopted", "run_id", ar.run.ID, "name", ar.run.Name)
}

// resume records that a run's workload is followed again: the run is
// RUNNING, unless it was being stopped, which it then is again. The
// caller has it keep the devices, CPUs and memory it was admitted with.
func (m *Manager) resume(ar *activeRun) {
	now := time.Now().UTC()
	m.mu.Lock()
	r := ar.run
	if !hadStarted(r.Status) {
		// The workload started after the run's last record was saved.
		r.Status = api.RunRunning
	}
	if r.StartedAt == nil {
		r.StartedAt = &now
	}
	r.Events = append(r.Events, store.RunEvent{Time: now, Type: store.EventAdopted,
		Message: "the agent restarted and follows the run's workload again"})
	ar.recordChanged = true
	m.changedLocked(ar)
	m.mu.Unlock()
	if r.Status == api.RunTerminating {
		ar.requestStop("the agent restarted while the run was stopping")
	}
}

// reset readies a run that had not started when the agent stopped to start
// from the beginning: what its first start made is undone, and its log
// emptied.
func (m *Manager) reset(ar *activeRun) *activeRun {
	m.release(ar)
	os.RemoveAll(m.logDir(ar.run.ID))
	if err := os.Mkdir(m.logDir(ar.run.ID), 0o700); err != nil {
		m.logger.Warn("could not empty the run's log", "run_id", ar.run.ID, "error", err)
	}
	m.mu.Lock()
	ar.run.Status = api.RunPending
	ar.run.Devices = nil
	ar.run.Events = append(ar.run.Events, store.RunEvent{Time: time.Now().UTC(), Type: store.EventWarning,
		Message: "the agent restarted before the run started; starting it again"})
	ar.recordChanged = true
	m.mu.Unlock()
	m.logger.Info("run had not started when the agent stopped; starting it again", "run_id", ar.run.ID, "name", ar.run.Name)
	return ar
}

// lostMessage says why a run is LOST: Adopt's err, which says either that
// its workload is gone or why the agent cannot take it back.
func (m *Manager) lostMessage(err error) string {
	if errors.Is(err, runtime.ErrNoWorkload) {
		return fmt.Sprintf("its workload was gone from the %s runtime when the agent restarted", m.cfg.Runtime.Name())
	}
	return fmt.Sprintf("the agent restarted and could not take the run's workload back: %v", err)
}

// lose ends a run, not active, whose workload the agent cannot follow.
func (m *Manager) lose(r *store.Run, why string) error {
	ar := newActiveRun(r)
	ar.orphaned = !m.placedHere(r)
	m.release(ar)
	if ar.orphaned {
		// The servers have it elsewhere, or ended it, meanwhile.
		return nil
	}
	now := time.Now().UTC()
	r.Status, r.Error, r.EndedAt = api.RunLost, why, &now
	r.Events = append(r.Events, store.RunEvent{Time: now, Type: store.EventLost, Message: why})
	if err := m.cfg.Store.SaveRun(r, ar.saved, true); err != nil && !(r.Scheduled && errors.Is(err, store.ErrConflict)) {
		return err
	}
	m.metrics.ended.WithLabelValues(string(api.RunLost)).Inc()
	m.logger.Warn("run lost", "run_id", r.ID, "name", r.Name, "why", why)
	return nil
}

// runtimeDown reports whether the runtime is known not to answer.
func (m *Manager) runtimeDown() bool {
	c, ok := m.cfg.Runtime.(runtime.Checker)
	return ok && c.Available() != nil
}

// adoptLater keeps a run active while the runtime does not answer, and
// tries again, with a growing wait, to learn whether it has the run's
// workload; then the run goes on as at start. A stop asked for meanwhile
// waits for that. A run that had started keeps its room meanwhile.
func (m *Manager) adoptLater(r *store.Run) {
	ar := newActiveRun(r)
	started := hadStarted(r.Status)
	if started {
		m.admit.restore(r)
	}
	m.activate(ar)
	m.wg.Add(2)
	go m.saver(ar)
	go func() {
		for wait := time.Second; ; wait = min(2*wait, adoptRetry) {
			select {
			case <-time.After(wait):
			case <-m.leaving:
				m.leave(ar)
				m.wg.Done()
				return
			}
			task, err := m.cfg.Runtime.Adopt(context.Background(), r.ID)
			switch {
			case err == nil:
				if !started {
					m.admit.restore(r)
				}
				m.resume(ar)
				m.follow(ar, task)
				m.wg.Done()
				return
			case errors.Is(err, runtime.ErrNoWorkload) && !started:
				m.reset(ar)
				m.enqueue(ar)
				m.execute(ar) // its wg.Done is this goroutine's
				return
			case errors.Is(err, runtime.ErrNoWorkload), !m.runtimeDown():
				msg := m.lostMessage(err)
				m.event(ar, store.EventLost, msg)
				m.end(ar, api.RunLost, nil, msg)
				m.wg.Done()
				return
			}
			m.logger.Warn("cannot tell yet whether the runtime still has the run's workload; trying again", "run_id", r.ID, "error", err)
		}
	}()
}

// hadStarted reports whether a run's record says its workload started.
func hadStarted(s api.RunStatus) bool { return s == api.RunRunning || s == api.RunTerminating }
