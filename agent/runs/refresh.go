package runs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"golang.org/x/sys/unix"
)

// Files on the run's tmpfs that its refresh keeps, the agent's own.
const (
	// refreshFile holds refreshState.
	refreshFile = "refresh.json"
	// workloadFile holds the run's runtime.Spec, to start its workload
	// again, whichever agent process restarts it.
	workloadFile = "workload.json"
)

// refreshState is what a run's refresh knows of the values the run has:
// a digest of each secret's, by name. It is kept on the run's tmpfs, with
// the values, so that an agent that adopts the run goes on from it.
type refreshState struct {
	Digests map[string]string `json:"digests"`
}

// change is what a refresh asks of the workload once it has written the
// new values: a restart, or signals.
type change struct {
	names   []string
	restart bool
	signals []syscall.Signal
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

// digest sums a secret's type, fields and values, each length-prefixed so
// that no two secrets sum alike.
func digest(sec *store.Secret) string {
	h := sha256.New()
	put := func(s []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
		h.Write(s)
	}
	put([]byte(sec.Type))
	for _, k := range slices.Sorted(maps.Keys(sec.Fields)) {
		put([]byte(k))
		put([]byte(sec.Fields[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(sec.Data)) {
		put([]byte(k))
		put(sec.Data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// saveRefresh records what the run's refresh knows, on its tmpfs.
func saveRefresh(runDir string, st *refreshState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return replaceFile(filepath.Join(runDir, refreshFile), b, 0o400, false)
}

func loadRefresh(runDir string) (*refreshState, error) {
	st := &refreshState{}
	if err := readJSONFile(filepath.Join(runDir, refreshFile), st); err != nil {
		return nil, err
	}
	return st, nil
}

// saveWorkload records the run's workload spec on its tmpfs, for a
// restart. What is not data (callbacks) is left out.
func saveWorkload(runDir string, spec *runtime.Spec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return replaceFile(filepath.Join(runDir, workloadFile), b, 0o400, false)
}

func readJSONFile(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// refresher fetches a running run's refreshed secrets again as their
// intervals come round, writes the values that changed to the run's
// tmpfs, records an event naming them, and hands what the workload must be
// told to the run's wait. It ends when quit is closed.
type refresher struct {
	m      *Manager
	ar     *activeRun
	runDir string
	plan   map[string]api.Refresh
	state  *refreshState
	// changes goes to the run's wait.
	changes chan<- change
	quit    <-chan struct{}
	// failing is the last refresh error recorded as an event, so that a
	// provider that stays down makes one event, not one per interval.
	failing string
}

// refresh starts the refresher of a started run, when it has secrets to
// refresh, and returns the channel of the changes it finds; nil when it
// has none.
func (m *Manager) refresh(ar *activeRun, quit <-chan struct{}) <-chan change {
	runDir := m.runDir(ar.run.ID)
	st, err := loadRefresh(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no secret of the run is refreshed
	}
	if err != nil {
		m.event(ar, store.EventWarning, fmt.Sprintf("the run's secrets are not refreshed: read its refresh state: %v", err))
		return nil
	}
	plan := refreshPlan(ar.run, slices.Collect(maps.Keys(st.Digests)))
	if len(plan) == 0 {
		return nil
	}
	changes := make(chan change)
	r := &refresher{m: m, ar: ar, runDir: runDir, plan: plan, state: st, changes: changes, quit: quit}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r.run()
	}()
	return changes
}

func (r *refresher) run() {
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
		case <-r.quit:
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
		if c == nil {
			continue
		}
		select {
		case r.changes <- *c:
		case <-r.quit:
			return
		}
	}
}

// once fetches the secrets names again and writes those that changed. It
// returns what the workload must be told, or nil, and the names of the
// secrets that are gone and no longer refreshed.
func (r *refresher) once(names []string) (*change, []string) {
	m, ar := r.m, r.ar
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	m.mu.Lock()
	run := ar.run.Clone()
	m.mu.Unlock()
	got, err := m.grants().Refresh(ctx, run, names)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		msg := fmt.Sprintf("refresh of secret(s) %s failed, and the run keeps the values it has: %v", strings.Join(names, ", "), err)
		m.logger.Warn("refresh of a run's secrets failed", "run_id", ar.run.ID, "secrets", strings.Join(names, ","), "error", err)
		if msg != r.failing {
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
	for _, sec := range got.Secrets {
		if !slices.Contains(names, sec.Name) {
			continue
		}
		if d := digest(sec); d != r.state.Digests[sec.Name] {
			changed = append(changed, sec)
		}
	}
	if len(changed) == 0 {
		return nil, got.Gone
	}
	c, err := r.write(changed)
	if err != nil {
		m.event(ar, store.EventError, fmt.Sprintf("refresh: write the new values of secret(s) %s: %v", strings.Join(secretNames(changed), ", "), err))
		return nil, got.Gone
	}
	return c, got.Gone
}

// write puts changed values on the run's tmpfs: among those the log
// masks, when the run masks its secrets; the secrets' files, each replaced
// whole; and, for a restart, their variables in the env file.
func (r *refresher) write(changed []*store.Secret) (*change, error) {
	m, ar := r.m, r.ar
	m.mu.Lock()
	run := ar.run.Clone()
	m.mu.Unlock()
	if run.MaskSecrets {
		// The new values are masked before the run can see them: the
		// log's writer reads them again within runlog.MasksPoll.
		values, _ := maskValues(changed)
		if err := runlog.AddMasks(filepath.Join(r.runDir, masksFile), values); err != nil {
			return nil, err
		}
		time.Sleep(2 * runlog.MasksPoll)
	}
	inj, err := rematerialize(r.runDir, m.cfg.Runtime.Isolated(), changed, run.Env)
	if err != nil {
		return nil, err
	}
	c := &change{names: secretNames(changed)}
	var envKept []string
	for _, sec := range changed {
		p := r.plan[sec.Name]
		switch sig := p.Signal(); {
		case p.OnChange == api.OnChangeRestart:
			c.restart = true
		case sig != "":
			if n := unix.SignalNum(sig); n != 0 && !slices.Contains(c.signals, n) {
				c.signals = append(c.signals, n)
			}
		}
		if p.OnChange != api.OnChangeRestart && hasSecretEnv(sec) {
			envKept = append(envKept, sec.Name)
		}
	}
	if c.restart {
		if err := patchEnv(filepath.Join(r.runDir, envFile), inj.secretEnv); err != nil {
			return nil, err
		}
	}
	for _, sec := range changed {
		r.state.Digests[sec.Name] = digest(sec)
	}
	if err := saveRefresh(r.runDir, r.state); err != nil {
		return nil, fmt.Errorf("record the run's refresh state: %w", err)
	}
	m.event(ar, store.EventChanged, fmt.Sprintf("secret(s) %s changed", strings.Join(c.names, ", ")))
	if len(envKept) > 0 {
		m.event(ar, store.EventWarning, fmt.Sprintf("secret(s) %s reach the run in environment variables, which keep their old values until the workload restarts: give them on_change: restart",
			strings.Join(envKept, ", ")))
	}
	if !c.restart && len(c.signals) == 0 {
		return nil, nil
	}
	return c, nil
}

// hasSecretEnv reports whether a secret's value reaches the run in a
// variable.
func hasSecretEnv(sec *store.Secret) bool {
	spec, ok := api.LookupType(sec.Type)
	return ok && slices.ContainsFunc(spec.Inject.Env, func(e api.EnvSpec) bool { return e.From == api.EnvData })
}

// patchEnv replaces, in the env file at p, the variables that vars sets.
func patchEnv(p string, vars []string) error {
	b, err := os.ReadFile(p)
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
	if err := replaceFile(p, []byte(strings.Join(out, "\x00")), 0o400, false); err != nil {
		return fmt.Errorf("write secret environment: %w", err)
	}
	return nil
}

// restart starts the run's workload again, from the spec its start
// recorded, its log going on from where it was.
func (m *Manager) restart(ar *activeRun) (runtime.Task, error) {
	run := ar.run
	runDir := m.runDir(run.ID)
	var spec runtime.Spec
	if err := readJSONFile(filepath.Join(runDir, workloadFile), &spec); err != nil {
		return nil, fmt.Errorf("read the run's workload spec: %w", err)
	}
	key, err := runlog.LoadKey(m.logDir(run.ID), run.ID, m.cfg.Store.Keyring())
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

// signal sends the workload the signals a change asks for.
func (m *Manager) signal(ar *activeRun, task runtime.Task, c change) {
	for _, sig := range c.signals {
		name := unix.SignalName(sig)
		if err := task.Signal(context.Background(), sig); err != nil {
			m.event(ar, store.EventError, fmt.Sprintf("send %s for changed secret(s) %s: %v", name, strings.Join(c.names, ", "), err))
			continue
		}
		m.event(ar, store.EventChanged, fmt.Sprintf("sent %s to the workload for changed secret(s) %s", name, strings.Join(c.names, ", ")))
	}
}

// restartFor stops the workload, as a stop does, and starts it again with
// the new values; *task is then the new workload. An error fails the run.
func (m *Manager) restartFor(ar *activeRun, task *runtime.Task, exited <-chan struct{}, c change) error {
	grace := m.cfg.StopGrace
	m.event(ar, store.EventRestarted, fmt.Sprintf("restarting the workload for changed secret(s) %s (SIGTERM, then SIGKILL after %s)", strings.Join(c.names, ", "), grace))
	if err := (*task).Stop(context.Background(), grace); err != nil {
		m.event(ar, store.EventError, "stop: "+err.Error())
	}
	<-exited
	if err := (*task).Delete(context.Background()); err != nil {
		return fmt.Errorf("restart for changed secret(s) %s: remove the workload: %w", strings.Join(c.names, ", "), err)
	}
	next, err := m.restart(ar)
	if err != nil {
		return fmt.Errorf("restart for changed secret(s) %s: %w", strings.Join(c.names, ", "), err)
	}
	*task = next
	m.event(ar, store.EventRestarted, "the workload runs again with the new values")
	return nil
}
