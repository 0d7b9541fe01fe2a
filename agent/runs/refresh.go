package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"golang.org/x/sys/unix"
)

// runStateDir holds, in the agent's state dir, a file for each run whose
// secrets are refreshed: what the agent needs of it across its own
// restarts. Workloads never see it, unlike their tmpfs, which the run's
// user owns and could alter.
const runStateDir = "runstate"

// runState is the agent's own record of a refreshed run. It holds no
// secret value.
type runState struct {
	// Workload is the spec the workload was started with, to start it
	// again.
	Workload *runtime.Spec `json:"workload"`
	// Digests are the keyed digests (store.Digest) of the values the run
	// has, by secret name.
	Digests map[string]string `json:"digests"`
	// Pending is a change written to the run's tmpfs that the workload
	// has not been told of yet.
	Pending *pendingChange `json:"pending,omitempty"`
}

// pendingChange is what a refresh asks of the workload once it has written
// the new values: a restart, or signals.
type pendingChange struct {
	// Seq numbers the changes of one agent process, so that telling the
	// workload of one does not clear a later one.
	Seq     int      `json:"seq"`
	Names   []string `json:"names"`
	Restart bool     `json:"restart,omitempty"`
	Signals []string `json:"signals,omitempty"`
}

// merge adds c to p, which may be nil.
func (p *pendingChange) merge(c *pendingChange) *pendingChange {
	if p == nil {
		return c
	}
	union := func(a, b []string) []string {
		return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
	}
	return &pendingChange{Seq: c.Seq, Restart: p.Restart || c.Restart, Names: union(p.Names, c.Names), Signals: union(p.Signals, c.Signals)}
}

// refreshPlan returns the refresh settings of the secrets of run that are
// refreshed, by name; nil when none is.
func refreshPlan(run *store.Run, names []string) map[string]api.Refresh {
	var plan map[string]api.Refresh
	for _, name := range names {
		r := api.RefreshFor(run.Refresh, run.SecretRefresh, name)
		if r.Every <= 0 {
			continue
		}
		if plan == nil {
			plan = map[string]api.Refresh{}
		}
		plan[name] = r
	}
	return plan
}

// refreshSummary says which of a run's secrets are refreshed, how often,
// and what a change does.
func refreshSummary(plan map[string]api.Refresh) string {
	parts := make([]string, 0, len(plan))
	for _, name := range slices.Sorted(maps.Keys(plan)) {
		p := plan[name]
		parts = append(parts, fmt.Sprintf("%s every %s (on_change: %s)", name, time.Duration(p.Every), p.OnChange))
	}
	return "refreshing secret(s) " + strings.Join(parts, ", ")
}

func (m *Manager) runStatePath(id string) string {
	return filepath.Join(m.cfg.StateDir, runStateDir, id+".json")
}

func (m *Manager) saveRunState(id string, st *runState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return store.WriteFileAtomic(m.runStatePath(id), b, 0o600)
}

func (m *Manager) loadRunState(id string) (*runState, error) {
	b, err := os.ReadFile(m.runStatePath(id))
	if err != nil {
		return nil, err
	}
	st := &runState{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("read the run's refresh state: %w", err)
	}
	return st, nil
}

// refresher fetches a running run's refreshed secrets again as their
// intervals come round, writes the values that changed to the run's
// tmpfs, records an event naming them, and hands what the workload must be
// told to the run's wait.
type refresher struct {
	m      *Manager
	ar     *activeRun
	runDir string
	plan   map[string]api.Refresh
	// changes goes to the run's wait, which calls told once it has acted
	// on one.
	changes chan *pendingChange
	// ctx ends when the refresher is told to stop, done once it has.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex // guards state and seq
	state *runState
	seq   int

	// failing is the last refresh error recorded, so that a provider that
	// stays down makes one event and log line, not one per interval.
	failing string
}

// refresher starts the refresher of a started run whose secrets are
// refreshed; it returns nil for one whose are not.
func (m *Manager) refresher(ar *activeRun) *refresher {
	st, err := m.loadRunState(ar.run.ID)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && st.Workload == nil {
		err = errors.New("the agent has no record of the run's workload spec")
	}
	if err != nil {
		m.event(ar, store.EventWarning, fmt.Sprintf("the run's secrets are no longer refreshed: %v", err))
		return nil
	}
	plan := refreshPlan(ar.run, slices.Collect(maps.Keys(st.Digests)))
	if len(plan) == 0 {
		return nil
	}
	r := &refresher{
		m: m, ar: ar, runDir: m.runDir(ar.run.ID), plan: plan, state: st,
		changes: make(chan *pendingChange), done: make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.run()
	return r
}

// stop ends the refresher and waits until it has: it then writes nothing
// more to the run's tmpfs.
func (r *refresher) stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

// told records that the workload was told of change c.
func (r *refresher) told(c *pendingChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Pending == nil || r.state.Pending.Seq != c.Seq {
		return
	}
	r.state.Pending = nil
	if err := r.m.saveRunState(r.ar.run.ID, r.state); err != nil {
		r.m.logger.Warn("could not record the run's refresh state", "run_id", r.ar.run.ID, "error", err)
	}
}

func (r *refresher) run() {
	defer close(r.done)
	// A change that an earlier agent process wrote and did not act on.
	r.mu.Lock()
	pending := r.state.Pending
	r.mu.Unlock()
	if pending != nil && !r.send(pending) {
		return
	}
	next := map[string]time.Time{}
	now := time.Now()
	for name, p := range r.plan {
		next[name] = now.Add(time.Duration(p.Every))
	}
	for len(next) > 0 {
		first := slices.MinFunc(slices.Collect(maps.Values(next)), func(a, b time.Time) int { return a.Compare(b) })
		t := time.NewTimer(time.Until(first))
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return
		}
		now := time.Now()
		var due []string
		for name, at := range next {
			if !at.After(now) {
				due = append(due, name)
				next[name] = now.Add(time.Duration(r.plan[name].Every))
			}
		}
		slices.Sort(due)
		c, gone := r.once(due)
		for _, name := range gone {
			delete(next, name)
		}
		if c != nil && !r.send(c) {
			return
		}
	}
}

// send hands c to the run's wait, unless the refresher is told to stop
// first.
func (r *refresher) send(c *pendingChange) bool {
	select {
	case r.changes <- c:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// once fetches the secrets names again and writes those that changed. It
// returns what the workload must be told, or nil, and the names of the
// secrets that are gone and no longer refreshed.
func (r *refresher) once(names []string) (*pendingChange, []string) {
	m, ar := r.m, r.ar
	m.mu.Lock()
	run := ar.run.Clone()
	m.mu.Unlock()
	got, err := m.grants().Refresh(r.ctx, run, names)
	if r.ctx.Err() != nil {
		return nil, nil
	}
	if err != nil {
		msg := fmt.Sprintf("refresh of secret(s) %s failed, and the run keeps the values it has: %v", strings.Join(names, ", "), err)
		if msg != r.failing {
			m.logger.Warn("refresh of a run's secrets failed", "run_id", run.ID, "secrets", strings.Join(names, ","), "error", err)
			m.event(ar, store.EventWarning, msg)
			r.failing = msg
		}
		return nil, nil
	}
	if r.failing != "" {
		m.event(ar, store.EventSecrets, "refresh of the run's secrets works again")
		r.failing = ""
	}
	for _, name := range got.Gone {
		m.event(ar, store.EventWarning, fmt.Sprintf("secret %s no longer exists, or cannot be read; the run keeps the value it has and no longer refreshes it", name))
	}
	var changed []*store.Secret
	r.mu.Lock()
	for _, sec := range got.Secrets {
		if slices.Contains(names, sec.Name) && m.cfg.Store.Digest(sec) != r.state.Digests[sec.Name] {
			changed = append(changed, sec)
		}
	}
	r.mu.Unlock()
	if len(changed) == 0 {
		return nil, got.Gone
	}
	c, err := r.write(run, changed)
	if err != nil {
		m.event(ar, store.EventError, fmt.Sprintf("refresh: write the new values of secret(s) %s: %v", strings.Join(secretNames(changed), ", "), err))
		return nil, got.Gone
	}
	return c, got.Gone
}

// write puts changed values on the run's tmpfs: among those the log
// masks, when the run masks its secrets; the secrets' files, each replaced
// whole; and their variables in the env file, which the workload reads
// when it starts again. Once they are written, it records the change as
// pending, for an agent that restarts before the workload is told.
func (r *refresher) write(run *store.Run, changed []*store.Secret) (*pendingChange, error) {
	m, ar := r.m, r.ar
	root, err := os.OpenRoot(r.runDir)
	if err != nil {
		return nil, fmt.Errorf("open the run's tmpfs: %w", err)
	}
	defer root.Close()
	if run.MaskSecrets {
		if err := r.mask(root, changed); err != nil {
			return nil, err
		}
	}
	if r.ctx.Err() != nil {
		return nil, nil
	}
	inj, err := rematerialize(root, r.runDir, m.cfg.Runtime.Isolated(), changed, run.Env)
	if err != nil {
		return nil, err
	}
	if len(inj.secretEnv) > 0 {
		if err := patchEnv(root, inj.secretEnv); err != nil {
			return nil, err
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	c := &pendingChange{Seq: r.seq, Names: secretNames(changed)}
	var envKept []string
	for _, sec := range changed {
		r.state.Digests[sec.Name] = m.cfg.Store.Digest(sec)
		p := r.plan[sec.Name]
		switch sig := p.Signal(); {
		case p.OnChange == api.OnChangeRestart:
			c.Restart = true
		case sig != "":
			if !slices.Contains(c.Signals, sig) {
				c.Signals = append(c.Signals, sig)
			}
		}
		if p.OnChange != api.OnChangeRestart && hasSecretEnv(sec) {
			envKept = append(envKept, sec.Name)
		}
	}
	tell := c.Restart || len(c.Signals) > 0
	if tell {
		r.state.Pending = r.state.Pending.merge(c)
	}
	if err := m.saveRunState(run.ID, r.state); err != nil {
		return nil, fmt.Errorf("record the run's refresh state: %w", err)
	}
	m.event(ar, store.EventChanged, fmt.Sprintf("secret(s) %s changed", strings.Join(c.Names, ", ")))
	if len(envKept) > 0 && !c.Restart {
		m.event(ar, store.EventWarning, fmt.Sprintf("secret(s) %s reach the run in environment variables, which keep their old values until the workload restarts: give them on_change: restart",
			strings.Join(envKept, ", ")))
	}
	if !tell {
		return nil, nil
	}
	return r.state.Pending, nil
}

// mask adds the changed values to those the run's log masks, and waits
// for the log's writer to have read them before the run can see them.
func (r *refresher) mask(root *os.Root, changed []*store.Secret) error {
	values, short := maskValues(changed)
	for _, name := range short {
		r.m.event(r.ar, store.EventWarning, fmt.Sprintf("secret %s has a new value or line shorter than %d characters, which is not masked in the run's logs", name, minMask))
	}
	old, err := root.ReadFile(masksFile)
	if err != nil {
		return fmt.Errorf("read the values to mask: %w", err)
	}
	b, err := runlog.AppendMasks(old, values)
	if err != nil {
		return err
	}
	if err := replaceFile(root, masksFile, b, 0o400, false); err != nil {
		return fmt.Errorf("write the values to mask: %w", err)
	}
	// The writer looks for new values every runlog.MasksPoll.
	time.Sleep(2 * runlog.MasksPoll)
	return nil
}

// hasSecretEnv reports whether a secret's value reaches the run in a
// variable.
func hasSecretEnv(sec *store.Secret) bool {
	spec, ok := api.LookupType(sec.Type)
	return ok && slices.ContainsFunc(spec.Inject.Env, func(e api.EnvSpec) bool { return e.From == api.EnvData })
}

// patchEnv replaces, in the run's env file, the variables that vars sets.
func patchEnv(root *os.Root, vars []string) error {
	b, err := root.ReadFile(envFile)
	if err != nil {
		return fmt.Errorf("read secret environment: %w", err)
	}
	set := map[string]string{}
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = kv
	}
	var out []string
	if len(b) > 0 {
		for _, kv := range strings.Split(string(b), "\x00") {
			k, _, _ := strings.Cut(kv, "=")
			if v, ok := set[k]; ok {
				kv = v
				delete(set, k)
			}
			out = append(out, kv)
		}
	}
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok {
			out = append(out, kv)
		}
	}
	if err := replaceFile(root, envFile, []byte(strings.Join(out, "\x00")), 0o400, false); err != nil {
		return fmt.Errorf("write secret environment: %w", err)
	}
	return nil
}

// tell signals or restarts the workload as change c asks, a restart from
// workload, the spec it started with; *task is then the workload that runs.
// An error fails the run.
func (m *Manager) tell(ar *activeRun, task *runtime.Task, exited <-chan struct{}, c *pendingChange, workload runtime.Spec) error {
	if !c.Restart {
		for _, name := range c.Signals {
			sig := unix.SignalNum(name)
			if sig == 0 {
				continue
			}
			if err := (*task).Signal(context.Background(), sig); err != nil {
				m.event(ar, store.EventError, fmt.Sprintf("send %s for changed secret(s) %s: %v", name, strings.Join(c.Names, ", "), err))
				continue
			}
			m.event(ar, store.EventChanged, fmt.Sprintf("sent %s to the workload for changed secret(s) %s", name, strings.Join(c.Names, ", ")))
		}
		return nil
	}
	grace := m.cfg.StopGrace
	m.event(ar, store.EventRestarted, fmt.Sprintf("restarting the workload for changed secret(s) %s (SIGTERM, then SIGKILL after %s)", strings.Join(c.Names, ", "), grace))
	if err := (*task).Stop(context.Background(), grace); err != nil {
		m.event(ar, store.EventError, "stop: "+err.Error())
	}
	<-exited
	if err := (*task).Delete(context.Background()); err != nil {
		return fmt.Errorf("restart for changed secret(s) %s: remove the workload: %w", strings.Join(c.Names, ", "), err)
	}
	next, err := m.restart(ar, workload)
	if err != nil {
		return fmt.Errorf("restart for changed secret(s) %s: %w", strings.Join(c.Names, ", "), err)
	}
	*task = next
	m.event(ar, store.EventRestarted, "the workload runs again with the new values")
	return nil
}

// restart starts the run's workload again from spec, the one its start
// recorded in the agent's state, its log going on from where it was.
func (m *Manager) restart(ar *activeRun, spec runtime.Spec) (runtime.Task, error) {
	id := ar.run.ID
	// What the workload runs is the agent's, whatever the record says.
	spec.ID, spec.RunDir, spec.HushBinary = id, m.runDir(id), m.cfg.HushBinary
	spec.Log.Dir, spec.Log.ID, spec.Log.Key = m.logDir(id), id, filepath.Join(m.cfg.KeyDir, id)
	key, err := runlog.LoadKey(spec.Log.Dir, id, m.cfg.Store.Keyring())
	if err != nil {
		return nil, err
	}
	if err := runlog.WriteKey(spec.Log.Key, key); err != nil {
		return nil, err
	}
	defer os.Remove(spec.Log.Key)
	spec.Log.Resume = true
	spec.Event = func(typ, msg string) { m.event(ar, store.EventType(typ), msg) }
	return m.cfg.Runtime.Start(context.Background(), &spec)
}

// workload returns a copy of the spec the run's workload started with.
func (r *refresher) workload() runtime.Spec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *r.state.Workload
}

// halfRestarted returns the refresh state of run id when the agent stopped
// while it restarted the run's workload for changed secrets: the change is
// pending, and it asks for a restart. It returns nil otherwise.
func (m *Manager) halfRestarted(id string) *runState {
	st, err := m.loadRunState(id)
	if err != nil || st.Pending == nil || !st.Pending.Restart || st.Workload == nil {
		return nil
	}
	return st
}

// finishRestart starts again, from st, the workload of a run whose restart
// the agent left half done, and adopts it; a run whose workload does not
// start is LOST, as one whose workload is gone.
func (m *Manager) finishRestart(ar *activeRun, st *runState) error {
	id := ar.run.ID
	task, err := m.restart(ar, *st.Workload)
	if err != nil {
		return m.lose(ar.run, fmt.Sprintf("the agent stopped while it restarted the run's workload for changed secrets, and it could not start it again: %v", err))
	}
	// Told now: the refresher must not restart it once more.
	st.Pending = nil
	if err := m.saveRunState(id, st); err != nil {
		m.logger.Warn("could not record the run's refresh state", "run_id", id, "error", err)
	}
	m.event(ar, store.EventRestarted, "the agent stopped while it restarted the workload for changed secrets; it runs again with the new values")
	m.adopt(ar, task)
	return nil
}
