package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/agent/audit"
	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// execute takes an active run from PENDING to a final status, and always
// cleans up after it: task, tmpfs, token and log. When the agent leaves
// its runs at shutdown, a started run is left running for the next agent
// to adopt, and one not started yet is left to the next agent to start.
func (m *Manager) execute(ar *activeRun) {
	defer m.wg.Done()
	// ctx ends when a stop is requested, or the agent leaves its runs,
	// before the workload has started, so that a long image pull does not
	// hold the run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	go func() {
		select {
		case reason := <-ar.stop:
			ar.stop <- reason // handed on to wait
			cancel()
		case <-m.leaving:
			cancel()
		case <-ar.done:
		}
	}()

	runDir := m.runDir(ar.run.ID)
	task, err := m.start(ctx, ar, runDir)
	switch {
	case err != nil && m.isLeaving():
		m.unstart(ar, "the agent stopped before the run started; the next agent to start on this data dir starts it")
	case err != nil && ctx.Err() != nil:
		m.event(ar, store.EventStopped, "stopped before it started")
		m.end(ar, api.RunStopped, nil, "")
	case err != nil:
		m.event(ar, store.EventError, err.Error())
		m.end(ar, api.RunFailed, nil, err.Error())
	default:
		m.follow(ar, task)
	}
}

// follow waits for a started run's workload to end and then ends the run,
// unless the agent leaves its runs first.
func (m *Manager) follow(ar *activeRun, task runtime.Task) {
	r := m.refresher(ar)
	status, code, errMsg, left := m.wait(ar, &task, r)
	r.stop()
	if left {
		m.leave(ar)
		return
	}
	if err := task.Delete(context.Background()); err != nil {
		m.logger.Warn("could not remove the run's workload", "run_id", ar.run.ID, "error", err)
		m.event(ar, store.EventError, "cleanup: "+err.Error())
	}
	m.end(ar, status, code, errMsg)
}

// runDir is where a run's tmpfs is mounted.
func (m *Manager) runDir(id string) string { return filepath.Join(m.cfg.StateDir, id) }

// release frees what a run holds that no ended or unstarted run may keep:
// its user's processes, its secret tmpfs and its token.
func (m *Manager) release(ar *activeRun) {
	id := ar.run.ID
	// No process of the run's user may outlive it: the next run given
	// that user would find it.
	if ua, ok := m.cfg.Runtime.(runtime.UserAssigner); ok {
		ua.ReleaseUser(id)
	}
	m.admit.release(id) // once the workload is gone: the next run may take its devices
	if err := os.Remove(m.runStatePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.logger.Warn("could not remove the run's refresh state", "run_id", id, "error", err)
	}
	if err := removeTmpfs(m.runDir(id)); err != nil {
		m.logger.Error("could not remove the run's secret tmpfs", "run_id", id, "error", err)
		m.event(ar, store.EventError, "cleanup: "+err.Error())
	}
	m.mu.Lock()
	orphaned := ar.orphaned
	m.mu.Unlock()
	if orphaned {
		// Its tokens are the servers' to revoke: they may be its next
		// attempt's, on another node.
		return
	}
	if err := m.grants().Revoke(id); err != nil {
		m.logger.Error("could not revoke the run's token", "run_id", id, "error", err)
	}
}

// end gives a run its final status once the runtime is done with its
// workload, and takes it out of the active set.
func (m *Manager) end(ar *activeRun, status api.RunStatus, code *int, errMsg string) {
	m.release(ar)
	// The runtime has finished with the workload: its log is complete.
	close(ar.logEnded)
	// The run takes no stop requests once it has its final status, and
	// leaves the active set only once that is saved, so that whoever does
	// not find it active finds its final record.
	m.update(ar, func(r *store.Run) {
		now := time.Now().UTC()
		r.Status, r.ExitCode, r.Error, r.EndedAt = status, code, errMsg, &now
	})
	m.deactivate(ar)
	m.metrics.ended.WithLabelValues(string(status)).Inc()
	m.logger.Info("run ended", "run_id", ar.run.ID, "status", status, "exit_code", derefInt(code))
}

// unstart puts a run that the agent left before it started back to
// PENDING, with what its start made undone, for the next agent to start.
func (m *Manager) unstart(ar *activeRun, why string) {
	m.release(ar)
	m.update(ar, func(r *store.Run) {
		r.Status = api.RunPending
		r.Events = append(r.Events, store.RunEvent{Time: time.Now().UTC(), Type: store.EventWarning, Message: why})
	})
	m.deactivate(ar)
}

// leave lets go of a started run that goes on without the agent: its
// record is saved as it is, and the next agent adopts it.
func (m *Manager) leave(ar *activeRun) {
	m.deactivate(ar)
	m.logger.Info("run left running for the next agent", "run_id", ar.run.ID, "name", ar.run.Name)
}

// deactivate saves what is left to save of a run and takes it out of the
// active set.
func (m *Manager) deactivate(ar *activeRun) {
	close(ar.finish)
	<-ar.saverDone
	m.mu.Lock()
	delete(m.active, ar.run.ID)
	close(ar.done)
	m.mu.Unlock()
}

// start moves the run through STARTING: it resolves and materializes the
// secrets, issues the run's token, and starts the workload.
func (m *Manager) start(ctx context.Context, ar *activeRun, runDir string) (runtime.Task, error) {
	run := ar.run
	devices, err := m.admitRun(ctx, ar) // a PENDING run waits here for room
	if err != nil {
		return nil, err
	}
	m.update(ar, func(r *store.Run) { r.Status = api.RunStarting })
	if m.entrypointErr != nil {
		return nil, m.entrypointErr
	}

	if !m.placedHere(run) {
		m.onConflict(ar, errors.New("the run is not placed on this node in this attempt"))
		return nil, errors.New("the servers no longer have the run on this node")
	}
	grant, err := m.grants().Grant(ctx, run)
	if err != nil {
		return nil, err
	}
	secrets := grant.Secrets
	for _, w := range grant.Warnings {
		m.event(ar, store.EventWarning, w)
	}
	// The run's own user, if the runtime runs it as one, owns its files.
	var owner *runtime.User
	if ua, ok := m.cfg.Runtime.(runtime.UserAssigner); ok {
		if owner, err = ua.AssignUser(run.ID); err != nil {
			return nil, err
		}
	}
	fallback, err := mountTmpfs(runDir, owner)
	if err != nil {
		return nil, err
	}
	if fallback {
		m.event(ar, store.EventWarning, "the agent may not mount a tmpfs (it is not root); secret files are in a 0700 directory instead")
	}
	isolated := m.cfg.Runtime.Isolated()
	names := secretNames(secrets)
	plan := refreshPlan(run, names)
	refreshing := map[string]bool{}
	for name := range plan {
		refreshing[name] = true
	}
	inj, err := materialize(runDir, isolated, secrets, run.Env, refreshing)
	if err != nil {
		return nil, err
	}
	for _, e := range inj.events {
		m.event(ar, store.EventEnv, e)
	}
	for _, w := range inj.warnings {
		m.event(ar, store.EventWarning, w)
	}
	m.event(ar, store.EventSecrets, fmt.Sprintf("resolved %d secret(s): %s", len(secrets), strings.Join(names, ", ")))

	if err := os.WriteFile(filepath.Join(runDir, tokenFile), []byte(grant.Token+"\n"), 0o400); err != nil {
		return nil, fmt.Errorf("write run token: %w", err)
	}
	var caPEM []byte
	if m.cfg.AgentCA != nil {
		caPEM = m.cfg.AgentCA()
	}
	if len(caPEM) > 0 {
		if err := os.WriteFile(filepath.Join(runDir, caFile), caPEM, 0o400); err != nil {
			return nil, fmt.Errorf("write the agent's CA: %w", err)
		}
	}
	hasCert, err := m.writeRunCert(runDir, run.ID)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		if err := chownRun(runDir, owner); err != nil {
			return nil, fmt.Errorf("give the run's files to its user: %w", err)
		}
	}
	logTarget, err := m.logTarget(run)
	if err != nil {
		return nil, err
	}
	// The writer removes the key's file once it has read it, which it
	// has once the runtime has started it; this is for when it did not.
	defer os.Remove(logTarget.Key)
	if run.MaskSecrets {
		// The agent's own file, not the run's: written after the run's
		// files were given to its user.
		values, short := maskValues(secrets)
		for _, name := range short {
			m.event(ar, store.EventWarning, fmt.Sprintf("secret %s has a value or line shorter than %d characters, which is not masked in the run's logs", name, minMask))
		}
		logTarget.Masks = filepath.Join(runDir, masksFile)
		if err := runlog.WriteMasks(logTarget.Masks, values); err != nil {
			return nil, fmt.Errorf("write the values to mask: %w", err)
		}
	}
	inRun := func(name string) string {
		if isolated {
			return path.Join(runtime.RunDir, name)
		}
		return filepath.Join(runDir, name)
	}
	env := []string{
		api.EnvRunName + "=" + run.Name,
		api.EnvRunID + "=" + run.ID,
		api.EnvAddr + "=" + m.cfg.AgentAddr,
		api.EnvTokenFile + "=" + inRun(tokenFile),
	}
	if len(caPEM) > 0 {
		env = append(env, api.EnvCACert+"="+inRun(caFile))
	}
	if hasCert {
		env = append(env, api.EnvClientCert+"="+inRun(clientCertFile), api.EnvClientKey+"="+inRun(clientKeyFile))
	}
	env = append(env, inj.env...)
	for _, k := range sortedKeys(run.Env) {
		env = append(env, k+"="+run.Env[k])
	}

	spec := &runtime.Spec{
		ID:          run.ID,
		Image:       run.Image,
		Command:     run.Command,
		Env:         env,
		RunDir:      runDir,
		EnvFile:     envFile,
		Mounts:      inj.mounts,
		HushBinary:  m.cfg.HushBinary,
		User:        owner,
		Log:         logTarget,
		GPUs:        run.GPUs,
		Devices:     devices,
		CPUs:        run.CPUs,
		MemoryBytes: run.MemoryBytes,
		Event:       func(typ, msg string) { m.event(ar, store.EventType(typ), msg) },
		Registry: func(host string) (string, string, bool) {
			for server, cred := range inj.registry {
				if registryHost(server) == host {
					return cred[0], cred[1], true
				}
			}
			return "", "", false
		},
	}
	if len(plan) > 0 {
		st := &runState{Workload: spec, Digests: map[string]string{}}
		for _, sec := range secrets {
			if refreshing[sec.Name] {
				st.Digests[sec.Name] = m.cfg.Store.Digest(sec)
			}
		}
		if err := m.saveRunState(run.ID, st); err != nil {
			return nil, fmt.Errorf("record the run's refresh state: %w", err)
		}
		m.event(ar, store.EventSecrets, refreshSummary(plan))
	}
	// A stop, or the agent leaving, while the run got ready: no workload.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.cfg.Audit != nil {
		if err := m.cfg.Audit(&audit.Entry{Type: "run", Run: run.ID, User: run.Owner, Secrets: names}); err != nil {
			return nil, fmt.Errorf("the run does not start while the agent's audit log cannot be written: %w", err)
		}
	}
	task, err := m.cfg.Runtime.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	m.metrics.startSeconds.Observe(time.Since(run.CreatedAt).Seconds())
	m.update(ar, func(r *store.Run) {
		now := time.Now().UTC()
		r.Status, r.StartedAt = api.RunRunning, &now
		r.Events = append(r.Events, store.RunEvent{Time: now, Type: store.EventStarted, Message: "started on " + m.cfg.Runtime.Name()})
	})
	return task, nil
}

// logTarget makes run's log key, sealed in the run's log dir, and hands it
// to the log's writer in a file of the key dir.
func (m *Manager) logTarget(run *store.Run) (runlog.Target, error) {
	dir := m.logDir(run.ID)
	key, err := runlog.NewKey(dir, run.ID, m.cfg.Store.Keyring())
	if err != nil {
		return runlog.Target{}, err
	}
	t := runlog.Target{Dir: dir, ID: run.ID, Key: filepath.Join(m.cfg.KeyDir, run.ID), Limit: run.MaxLogBytes}
	return t, runlog.WriteKey(t.Key, key)
}

// secretsFor returns the secrets a run gets, values included: those its
// spec names, or else all of its owner's, or, for a run launched by
// another, all that its parent was given. A named secret that cannot be
// read fails the run; otherwise one that cannot be read is left out, with
// a warning.
func (m *Manager) secretsFor(run *store.Run) ([]*store.Secret, []string, error) {
	names, named := run.Secrets, run.Secrets != nil
	if run.Parent != "" && !named {
		// A run launched by another that names no secrets gets those of
		// its parent's that still exist, and reads no others: not even
		// to warn about them.
		names = append([]string{}, run.SecretLimit...)
	}
	secrets, unreadable, missing, err := m.openExisting(run.Owner, names)
	if named && len(missing) > 0 {
		return nil, nil, fmt.Errorf("the run asks for secret(s) %s, which do not exist: `hush get secrets` lists yours", strings.Join(missing, ", "))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read secrets: %w", err)
	}
	var warnings []string
	for _, u := range unreadable {
		msg := fmt.Sprintf("secret %s cannot be read by the agent (%v): delete it with `hush delete secret %s` and create it again", u.Name, u.Err, u.Name)
		if named {
			return nil, nil, errors.New("the run asks for " + msg)
		}
		warnings = append(warnings, msg+"; the run goes on without it")
	}
	if run.Parent != "" {
		// Checked at submit; checked again, as a child must never get more.
		secrets = slices.DeleteFunc(secrets, func(s *store.Secret) bool { return !slices.Contains(run.SecretLimit, s.Name) })
	}
	return secrets, warnings, nil
}

// openExisting opens owner's secrets names, leaving out those that do not
// exist, which it returns by name.
func (m *Manager) openExisting(owner string, names []string) ([]*store.Secret, []*store.RecordError, []string, error) {
	secrets, unreadable, err := m.cfg.Store.OpenSecrets(owner, names)
	var missing *store.MissingError
	if !errors.As(err, &missing) {
		return secrets, unreadable, nil, err
	}
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(missing.Names, n) })
	secrets, unreadable, err = m.cfg.Store.OpenSecrets(owner, names)
	return secrets, unreadable, missing.Names, err
}

// wait waits for the workload to exit, stopping it when asked or when it
// outlives its max_duration, and returns the final status; or it returns
// left when the agent leaves its runs first. It signals or restarts the
// workload as its refresh's changes ask; task is then the workload that
// runs now.
func (m *Manager) wait(ar *activeRun, task *runtime.Task, r *refresher) (status api.RunStatus, code *int, errMsg string, left bool) {
	var changes <-chan *pendingChange
	if r != nil {
		changes = r.changes
	}
	var exited chan struct{}
	var exit int
	var waitErr error
	watch := func() {
		exited = make(chan struct{})
		go func(t runtime.Task, exited chan struct{}) {
			exit, waitErr = t.Wait(context.Background())
			close(exited)
		}(*task, exited)
	}
	watch()
	var deadline <-chan time.Time
	if d := time.Duration(ar.run.MaxDuration); d > 0 {
		// A run adopted by a restarted agent has had some of its time.
		if started := ar.run.StartedAt; started != nil {
			d -= time.Since(*started)
		}
		t := time.NewTimer(max(d, 0))
		defer t.Stop()
		deadline = t.C
	}

	var stopReason string
	for waiting := true; waiting; {
		select {
		case <-exited:
			waiting = false
		case stopReason = <-ar.stop:
			waiting = false
		case <-deadline:
			stopReason = fmt.Sprintf("it ran longer than its max_duration of %s", time.Duration(ar.run.MaxDuration))
			waiting = false
		case <-m.leaving:
			return "", nil, "", true
		case c := <-changes:
			// A workload that has just ended, or a stop that came with
			// the change, wins over it: the change is told to the next
			// agent or not at all.
			select {
			case <-exited:
				waiting = false
				continue
			case stopReason = <-ar.stop:
				waiting = false
				continue
			default:
			}
			if err := m.tell(ar, task, exited, c, r.workload()); err != nil {
				return api.RunFailed, nil, err.Error(), false
			}
			r.told(c)
			if c.Restart {
				watch()
			}
		}
	}
	if stopReason != "" {
		grace := m.cfg.StopGrace
		m.update(ar, func(r *store.Run) {
			r.Status = api.RunTerminating
			r.Events = append(r.Events, store.RunEvent{Time: time.Now().UTC(), Type: store.EventStopping,
				Message: fmt.Sprintf("stopping: %s (SIGTERM, then SIGKILL after %s)", stopReason, grace)})
		})
		if err := (*task).Stop(context.Background(), grace); err != nil {
			m.event(ar, store.EventError, "stop: "+err.Error())
		}
		<-exited
	}

	if waitErr != nil {
		return api.RunFailed, nil, waitErr.Error(), false
	}
	m.event(ar, store.EventExited, fmt.Sprintf("exited with code %d", exit))
	switch {
	case stopReason != "":
		return api.RunStopped, &exit, "", false
	case exit == 0:
		return api.RunCompleted, &exit, "", false
	}
	return api.RunFailed, &exit, fmt.Sprintf("the command exited with code %d", exit), false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
