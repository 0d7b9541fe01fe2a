// Package runs manages runs: it records them in the store, materializes
// their secrets on a tmpfs, starts them on a runtime, keeps their logs, and
// moves them through their lifecycle.
package runs

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/audit"
	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Errors the manager returns; check them with errors.Is.
var (
	ErrNotFound = errors.New("run not found")
	ErrInvalid  = errors.New("invalid run")
	ErrEnded    = errors.New("run has ended")
	// ErrForbidden is returned when a run asks for more than the run that
	// launches it may give.
	ErrForbidden = errors.New("not allowed")
	// ErrUnavailable is returned for a run submitted while the runtime
	// is known not to answer.
	ErrUnavailable = errors.New("this agent cannot start runs now")
	// ErrShuttingDown is returned for a run submitted while the agent
	// shuts down.
	ErrShuttingDown = errors.New("the agent is shutting down: submit the run again once it is back")
)

// Submitter is the token that submits a run. A run launched by another run
// gets at most what its launcher has: the secrets it was given, and write
// access to secrets only when it has that.
type Submitter struct {
	// RunID is the id of the run whose token submits, or "" for a
	// person's token.
	RunID string
	// Secrets names the secrets the launching run was given.
	Secrets []string
	// SecretsWrite is whether the launching run's token may write secrets.
	SecretsWrite bool
	// Management is whether the token is a management token, or a run's
	// token whose run was submitted with one: such runs resolve provider
	// references that the plugins' allow rules do not name.
	Management bool
}

// maxNameLen bounds run names, which become container ids and host names.
const maxNameLen = 63

// Config configures a Manager.
type Config struct {
	Store   *store.Store
	Runtime runtime.Runtime
	// LogDir holds the runs' sealed logs.
	LogDir string
	// MaxLogSize caps each run's log in bytes: the default for runs that
	// set no cap, and the most a run may ask for.
	MaxLogSize int64
	// StateDir holds each active run's tmpfs.
	StateDir string
	// KeyDir holds, until its writer has read it, each run log's key
	// (runlog.WriteKey). Workloads cannot see it.
	KeyDir string
	// HushBinary is the static hush binary that serves as entrypoint.
	HushBinary string
	// AgentAddr is the agent's URL as seen from runs (HUSH_ADDR).
	AgentAddr string
	// AgentCA returns the PEM CA certificates that runs trust the agent
	// by (HUSH_CACERT), or nil when the agent does not serve TLS or has
	// no CA file; nil means none.
	AgentCA func() []byte
	// RunCert mints a client certificate for run id (PEM certificate and
	// key), for an agent with verify_incoming (HUSH_CLIENT_CERT and
	// HUSH_CLIENT_KEY); nil means runs get none.
	RunCert func(id string) (certPEM, keyPEM []byte, err error)
	// StopGrace is the time between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// Audit, when set, records each run that starts with the secrets it
	// is given, and each provider reference resolved; a run whose record
	// cannot be written does not start.
	Audit func(*audit.Entry) error
	// MaskSecrets masks the secret values of runs whose spec does not say
	// in their logs.
	MaskSecrets bool
	// LeaveRunsOnShutdown makes Shutdown leave runs going, for the next
	// agent on the same data dir to adopt, where it would stop them.
	LeaveRunsOnShutdown bool
	// Resolver fetches values of provider references; nil when the agent
	// has no plugins.
	Resolver Resolver
	// Capacity is what runs may ask for in total; see admit.go.
	Capacity Capacity
	// Scheduled is set on the servers of a cluster: a submitted run is
	// recorded for the leader to place, and runs here only when placed
	// here (cluster.go). NodeID is this agent's node's id.
	Scheduled bool
	NodeID    string
	// Feasible, for scheduled runs, refuses at submit a run that no node
	// could ever take.
	Feasible func(*api.CreateRunRequest) error
	// Remote reaches the nodes of runs that other nodes run.
	Remote Remote
	// Grants gives runs their secrets and tokens; nil means this
	// agent's store and plugins (grants.go).
	Grants Grants
	Logger hclog.Logger
}

// Manager runs runs. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	logger hclog.Logger
	// entrypointErr is why the hush binary cannot serve as a container
	// entrypoint, if it cannot.
	entrypointErr error
	admit         *admission // gives runs GPUs, CPUs and memory; see admit.go

	mu     sync.Mutex
	active map[string]*activeRun
	// damagedLogs are the runs whose logs a keyring rotation found
	// damaged.
	damagedLogs map[string]bool
	wg          sync.WaitGroup
	metrics     *runMetrics

	// closing is set when the agent shuts down: it accepts no more runs;
	// guarded by mu.
	closing bool
	// leaving is closed when the agent shuts down and leaves its runs
	// going: whatever follows a run lets go of it.
	leaving   chan struct{}
	leaveOnce sync.Once
}

type activeRun struct {
	run *store.Run // guarded by Manager.mu
	// changed is closed and replaced whenever run changes; guarded by
	// Manager.mu.
	changed chan struct{}
	// recordChanged is set when more than run's events changed since
	// its record was last saved; guarded by Manager.mu.
	recordChanged bool
	// saved counts the events saved; only the run's saver uses it.
	saved int
	// unsaved wakes the run's saver; finish ends it, once it has saved
	// everything, and saverDone is closed then.
	unsaved   chan struct{}
	finish    chan struct{}
	saverDone chan struct{}
	// logEnded is closed once the run's log is complete: the runtime
	// has finished with its workload.
	logEnded chan struct{}
	// place is the run's place in line for the node's GPUs, CPUs and
	// memory, taken when the run is accepted.
	place    *waiter
	stopOnce sync.Once
	stop     chan string // receives why the run is being stopped
	done     chan struct{}
	// orphaned is set once the store refused a save because the servers
	// no longer have the run on this node; guarded by Manager.mu.
	orphaned bool
}

func newActiveRun(run *store.Run) *activeRun {
	return &activeRun{
		run: run, logEnded: make(chan struct{}), saved: len(run.Events),
		changed: make(chan struct{}), unsaved: make(chan struct{}, 1), finish: make(chan struct{}), saverDone: make(chan struct{}),
		stop: make(chan string, 1), done: make(chan struct{}),
	}
}

// NewManager returns a manager, first taking over the runs that were
// active when the agent last stopped (see recover).
func NewManager(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.KeyDir == "" {
		return nil, errors.New("start runs: no log key dir configured")
	}
	// Keys left in the key dir are of writers that never started.
	if err := os.RemoveAll(cfg.KeyDir); err != nil {
		return nil, fmt.Errorf("clear log key dir: %w", err)
	}
	for _, dir := range []string{cfg.LogDir, cfg.StateDir, filepath.Join(cfg.StateDir, runStateDir), cfg.KeyDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if cfg.MaxLogSize == 0 {
		cfg.MaxLogSize = defaultLogSize
	}
	m := &Manager{cfg: cfg, logger: cfg.Logger, active: map[string]*activeRun{}, damagedLogs: map[string]bool{}, leaving: make(chan struct{}), metrics: newRunMetrics()}
	m.admit = newAdmission(cfg, m.logger)
	if cfg.Runtime.Isolated() {
		m.entrypointErr = checkStatic(cfg.HushBinary)
		if m.entrypointErr != nil {
			m.logger.Warn("runs cannot start in containers", "error", m.entrypointErr)
		}
	}
	if err := m.recover(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// isLeaving reports whether the agent is leaving its runs.
func (m *Manager) isLeaving() bool {
	select {
	case <-m.leaving:
		return true
	default:
		return false
	}
}

// checkStatic reports an error when the binary at path needs a dynamic
// loader, which images may not have.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("inspect hush binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("the hush binary %s is dynamically linked, so it cannot run inside containers: build it with CGO_ENABLED=0 (`make build` does)", path)
		}
	}
	return nil
}

// Submit validates a run, records it as PENDING and starts it in the
// background on behalf of by.
func (m *Manager) Submit(owner string, by Submitter, req *api.CreateRunRequest) (*store.Run, error) {
	if err := m.validate(req); err != nil {
		return nil, err
	}
	if err := by.allows(req); err != nil {
		return nil, err
	}
	if m.cfg.Scheduled {
		return m.submitScheduled(owner, by, req)
	}
	if c, ok := m.cfg.Runtime.(runtime.Checker); ok {
		if err := c.Available(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	// A name is taken for good only by the write that records the run: a
	// run of the same name recorded in between makes the next try take
	// another.
	for try := 0; ; try++ {
		name, err := m.uniqueName(owner, req.Name)
		if err != nil {
			return nil, err
		}
		run, err := m.create(owner, name, by, req)
		if errors.Is(err, store.ErrExists) && try < 8 {
			continue
		}
		return run, err
	}
}

// create records a run named name and starts it.
func (m *Manager) create(owner, name string, by Submitter, req *api.CreateRunRequest) (*store.Run, error) {
	run := m.newRun(owner, name, by, req, time.Now().UTC())
	// The runtime's logger writes the log, in the dir made for it here.
	if err := os.Mkdir(m.logDir(run.ID), 0o700); err != nil {
		return nil, fmt.Errorf("create run log: %w", err)
	}
	// The run is active before it is recorded, so that whoever finds the
	// record finds the run's live state.
	ar := newActiveRun(run)
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		os.Remove(m.logDir(run.ID))
		return nil, ErrShuttingDown
	}
	m.active[run.ID] = ar
	// Counted with its activation, so that a shutdown that finds the run
	// active waits for it.
	m.wg.Add(2)
	m.mu.Unlock()
	if err := m.cfg.Store.CreateRun(run.Clone()); err != nil {
		m.mu.Lock()
		delete(m.active, run.ID)
		close(ar.done)
		m.mu.Unlock()
		m.wg.Add(-2)
		os.RemoveAll(m.logDir(run.ID))
		return nil, err
	}
	m.enqueue(ar)
	go m.saver(ar)
	go m.execute(ar)
	m.logger.Info("run submitted", "run_id", run.ID, "name", run.Name, "user", owner)
	m.mu.Lock()
	defer m.mu.Unlock()
	return run.Clone(), nil
}

func (m *Manager) validate(req *api.CreateRunRequest) error {
	var errs []error
	if err := api.ValidateSecretName(req.Name); err != nil || len(req.Name) > maxNameLen {
		errs = append(errs, fmt.Errorf("run name %q is not valid: use lowercase letters, digits, '.' and '-', start and end with a letter or digit, at most %d characters", req.Name, maxNameLen))
	}
	if strings.TrimSpace(req.Command) == "" {
		errs = append(errs, errors.New("command is empty: give the shell command the run executes"))
	}
	if req.Image == "" && m.cfg.Runtime.Isolated() {
		errs = append(errs, errors.New("image is empty: give an OCI image reference, such as docker.io/library/busybox:latest"))
	}
	// Checked on every runtime, the exec one too, which ignores it: the
	// spec is wrong either way, and containerd would fail it only at the
	// pull, with a registry's or DNS's error.
	if req.Image != "" {
		if err := api.ValidateImageRef(req.Image); err != nil {
			errs = append(errs, err)
		}
	}
	for k, v := range req.Env {
		if err := api.ValidateEnvKey(k); err != nil {
			errs = append(errs, err)
		}
		if err := api.ValidateEnvValue([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("env_variables %s %w", k, err))
		}
	}
	for _, s := range req.Secrets {
		if err := api.ValidateSecretName(s); err != nil {
			errs = append(errs, err)
		}
	}
	if err := api.ValidateRunAPI(req.API); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkRefresh(req)...)
	if req.GPUs < 0 || req.CPUs < 0 || req.MemoryBytes < 0 || req.MaxDuration < 0 || req.Retries < 0 {
		errs = append(errs, errors.New("gpus, cpus, memory, max_duration and retries must not be negative"))
	}
	// A scheduled run is checked against every node's capacity instead.
	if !m.cfg.Scheduled {
		if err := m.admit.check(req.GPUs, req.CPUs, req.MemoryBytes); err != nil {
			errs = append(errs, err)
		}
		if len(req.Constraints) > 0 || req.Retries > 0 {
			errs = append(errs, errors.New("constraints and retries are for clusters of servers, which place runs on nodes; this agent runs every run itself"))
		}
	}
	if err := m.checkLogSize(req.MaxLogBytes); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// allows checks that a run launched by a run asks for no more than that
// run has. A person's token allows anything.
func (by Submitter) allows(req *api.CreateRunRequest) error {
	if by.RunID == "" {
		return nil
	}
	var outside []string
	for _, name := range req.Secrets {
		if !slices.Contains(by.Secrets, name) {
			outside = append(outside, name)
		}
	}
	var errs []error
	if len(outside) > 0 {
		given := "none"
		if len(by.Secrets) > 0 {
			given = strings.Join(by.Secrets, ", ")
		}
		errs = append(errs, fmt.Errorf("a run launched by run %s may get only the secrets that run was given (%s), not %s: list the secrets in the launching run's spec",
			by.RunID, given, strings.Join(outside, ", ")))
	}
	if req.API.SecretsWrite() && !by.SecretsWrite {
		errs = append(errs, fmt.Errorf("a run launched by run %s cannot have api.secrets %q: the launching run does not have it (grant it in that run's spec)",
			by.RunID, api.AccessWrite))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	return nil
}

// Descends reports whether run is the run with id ancestor or was launched,
// directly or not, by it. A run's token reaches only such runs.
func (m *Manager) Descends(run *store.Run, ancestor string) bool {
	seen := map[string]bool{}
	for run != nil && !seen[run.ID] {
		if run.ID == ancestor {
			return true
		}
		seen[run.ID] = true
		if run.Parent == "" {
			return false
		}
		var err error
		if run, _, _, err = m.byID(run.Owner, run.Parent); err != nil {
			return false
		}
	}
	return false
}

// Subtree returns the runs of list that are the run with id root or that it
// launched, directly or not; list must hold every run of root's owner.
func Subtree(list []*store.Run, root string) []*store.Run {
	parent := make(map[string]string, len(list))
	for _, r := range list {
		parent[r.ID] = r.Parent
	}
	var out []*store.Run
	for _, r := range list {
		seen := map[string]bool{}
		for id := r.ID; id != "" && !seen[id]; id = parent[id] {
			if id == root {
				out = append(out, r)
				break
			}
			seen[id] = true
		}
	}
	return out
}

// uniqueName returns name, or name with a short random suffix when the
// owner has a run of that name. It opens no run: names are indexed.
func (m *Manager) uniqueName(owner, name string) (string, error) {
	candidate := name
	for {
		taken, err := m.cfg.Store.RunNameTaken(owner, candidate)
		if err != nil {
			return "", err
		}
		if !taken {
			// A run being recorded has its name only in the active set.
			m.mu.Lock()
			taken = m.activeByName(owner, candidate) != nil
			m.mu.Unlock()
		}
		if !taken {
			return candidate, nil
		}
		base := name[:min(len(name), maxNameLen-5)]
		candidate = strings.TrimRight(base, ".-") + "-" + randomSuffix()
	}
}

// activeByName returns owner's active run named name, if any; callers
// hold m.mu.
func (m *Manager) activeByName(owner, name string) *activeRun {
	for _, ar := range m.active {
		if ar.run.Owner == owner && ar.run.Name == name {
			return ar
		}
	}
	return nil
}

func randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// logDir is where a run's log lives; legacyLogPath is where hush 0.1 kept it.
func (m *Manager) logDir(id string) string        { return filepath.Join(m.cfg.LogDir, id) }
func (m *Manager) legacyLogPath(id string) string { return filepath.Join(m.cfg.LogDir, id+".log") }

// update changes an active run under the lock; its saver records the
// change.
func (m *Manager) update(ar *activeRun, fn func(r *store.Run)) {
	m.mu.Lock()
	fn(ar.run)
	ar.recordChanged = true
	m.changedLocked(ar)
	m.mu.Unlock()
}

// event records an event on an active run.
func (m *Manager) event(ar *activeRun, typ store.EventType, msg string) {
	m.mu.Lock()
	ar.run.Events = append(ar.run.Events, store.RunEvent{Time: time.Now().UTC(), Type: typ, Message: msg})
	m.changedLocked(ar)
	m.mu.Unlock()
}

// changedLocked wakes those who watch ar and its saver; callers hold m.mu.
func (m *Manager) changedLocked(ar *activeRun) {
	close(ar.changed)
	ar.changed = make(chan struct{})
	select {
	case ar.unsaved <- struct{}{}:
	default:
	}
}

// saver records an active run's changes as they come, apart from the
// work that makes them: a run does not wait for a disk to record what
// it did, except for its final state. It appends events and rewrites the
// run's record only when more than its events changed.
func (m *Manager) saver(ar *activeRun) {
	defer m.wg.Done()
	defer close(ar.saverDone)
	for {
		select {
		case <-ar.unsaved:
			m.save(ar)
		case <-ar.finish:
			// A cluster's run keeps its GPUs until its end is written,
			// which an election may hold up: it is tried again.
			wait := 200 * time.Millisecond
			for deadline := time.Now().Add(finalSaveWait); !m.save(ar) && ar.run.Scheduled && time.Now().Before(deadline); {
				time.Sleep(wait)
				wait = min(2*wait, 5*time.Second)
			}
			return
		}
	}
}

// finalSaveWait bounds how long a cluster's run tries to write its end.
const finalSaveWait = 2 * time.Minute

// save writes what changed in ar since it was last saved, and reports
// whether all of it is written, or need not be.
func (m *Manager) save(ar *activeRun) bool {
	m.mu.Lock()
	run, record, orphaned := ar.run.Clone(), ar.recordChanged, ar.orphaned
	ar.recordChanged = false
	m.mu.Unlock()
	if orphaned || !record && len(run.Events) == ar.saved {
		return true
	}
	if err := m.cfg.Store.SaveRun(run, ar.saved, record); err != nil {
		if errors.Is(err, store.ErrConflict) {
			m.onConflict(ar, err)
			return true
		}
		m.logger.Error("save run", "run_id", run.ID, "error", err)
		if record {
			m.mu.Lock()
			ar.recordChanged = true
			m.mu.Unlock()
		}
		return false
	}
	ar.saved = len(run.Events)
	return true
}

// Watch returns a run once it has more than index events or has ended, or
// when ctx ends, whichever is first: a blocking query, so that clients see
// changes at once without polling fast.
func (m *Manager) Watch(ctx context.Context, owner, ref string, index int) (*store.Run, error) {
	for {
		stored := m.cfg.Store.Changed()
		run, ar, changed, err := m.lookup(owner, ref)
		if err != nil {
			return nil, err
		}
		if len(run.Events) > index {
			return run, nil
		}
		if m.elsewhere(run, ar) && !run.Status.Done() {
			// Its record changes as its node, or the leader, writes it.
			select {
			case <-stored:
				continue
			case <-ctx.Done():
				return run, nil
			}
		}
		if ar == nil {
			return run, nil
		}
		select {
		case <-changed:
		case <-ar.done:
		case <-ctx.Done():
			return run, nil
		}
	}
}

// Get returns one of owner's runs by id or name.
func (m *Manager) Get(owner, ref string) (*store.Run, error) {
	run, _, _, err := m.lookup(owner, ref)
	return run, err
}

// lookup finds one of owner's runs by id or name and, while it is active,
// returns its activeRun and the channel closed at its next change. It
// holds m.mu only to read the active set, and opens no run but the one it
// finds: names are indexed.
func (m *Manager) lookup(owner, ref string) (*store.Run, *activeRun, chan struct{}, error) {
	m.mu.Lock()
	if ar := m.activeByName(owner, ref); ar != nil {
		defer m.mu.Unlock()
		return ar.run.Clone(), ar, ar.changed, nil
	}
	m.mu.Unlock()
	run, err := m.cfg.Store.RunByName(owner, ref)
	if errors.Is(err, store.ErrNotFound) {
		return m.byID(owner, ref)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return m.current(run)
}

// current returns the active state of run, read from the store, if it has
// become active since: it was submitted while it was looked up.
func (m *Manager) current(run *store.Run) (*store.Run, *activeRun, chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ar := m.active[run.ID]; ar != nil {
		return ar.run.Clone(), ar, ar.changed, nil
	}
	return run, nil, nil, nil
}

// byID finds one of owner's runs by id, as lookup does.
func (m *Manager) byID(owner, id string) (*store.Run, *activeRun, chan struct{}, error) {
	m.mu.Lock()
	if ar := m.active[id]; ar != nil && ar.run.Owner == owner {
		defer m.mu.Unlock()
		return ar.run.Clone(), ar, ar.changed, nil
	}
	m.mu.Unlock()
	// A run leaves the active set only once its final record is saved,
	// so the record read now is current.
	run, err := m.cfg.Store.GetRun(owner, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return m.current(run)
}

// find returns a run and, while it is active, its activeRun.
func (m *Manager) find(owner, ref string) (*store.Run, *activeRun, error) {
	run, ar, _, err := m.lookup(owner, ref)
	return run, ar, err
}

// List returns owner's runs, oldest first.
func (m *Manager) List(owner string) ([]*store.Run, error) {
	runs, err := m.cfg.Store.ListRuns(owner)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range runs {
		if ar, ok := m.active[r.ID]; ok {
			runs[i] = ar.run.Clone()
		}
	}
	return runs, nil
}

// endedError is ErrEnded for a run that was asked to stop, in one
// sentence: "run x has already ended (COMPLETED): nothing to stop".
type endedError struct {
	name   string
	status string // "" when not known
}

func (e *endedError) Error() string {
	if e.status == "" {
		return "run " + e.name + " has already ended: nothing to stop"
	}
	return "run " + e.name + " has already ended (" + e.status + "): nothing to stop"
}

func (e *endedError) Unwrap() error { return ErrEnded }

// Stop asks an active run to stop and returns at once; the run becomes
// TERMINATING, then STOPPED.
func (m *Manager) Stop(owner, ref string) (*store.Run, error) {
	run, ar, err := m.find(owner, ref)
	if err != nil {
		return nil, err
	}
	if m.elsewhere(run, ar) && !run.Status.Done() {
		return m.stopScheduled(run, "stopped by its owner")
	}
	if ar == nil && !run.Status.Done() && m.isLeaving() {
		// The agent let go of it, still going: the next agent stops it.
		return run, ErrShuttingDown
	}
	if ar == nil || run.Status.Done() {
		return run, &endedError{name: run.Name, status: string(run.Status)}
	}
	ar.requestStop("stopped by its owner")
	return run, nil
}

func (ar *activeRun) requestStop(reason string) {
	ar.stopOnce.Do(func() { ar.stop <- reason })
}

// Delete removes a run and its log, stopping it first if it is active.
func (m *Manager) Delete(ctx context.Context, owner, ref string) error {
	run, ar, err := m.find(owner, ref)
	if err != nil {
		return err
	}
	if ar != nil {
		ar.requestStop("deleted by its owner")
		select {
		case <-ar.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	} else if m.elsewhere(run, ar) && !run.Status.Done() {
		if _, err := m.stopScheduled(run, "deleted by its owner"); err != nil && !errors.Is(err, ErrEnded) {
			return err
		}
		if err := m.awaitDone(ctx, owner, run.ID); err != nil {
			return err
		}
	}
	if m.isLeaving() {
		if cur, err := m.cfg.Store.GetRun(owner, run.ID); err == nil && !cur.Status.Done() {
			// The agent let go of it, still going: the next agent
			// deletes it.
			return ErrShuttingDown
		}
	}
	if err := m.cfg.Store.DeleteRun(owner, run.ID, run.Name); err != nil {
		return err
	}
	if err := os.RemoveAll(m.logDir(run.ID)); err != nil {
		return fmt.Errorf("remove run log: %w", err)
	}
	if err := os.Remove(m.legacyLogPath(run.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove run log: %w", err)
	}
	if run.Scheduled && run.Node != "" && run.Node != m.cfg.NodeID && m.cfg.Remote != nil {
		if err := m.cfg.Remote.Forget(ctx, run); err != nil {
			m.logger.Warn("could not remove the deleted run's log from its node; it stays there", "run_id", run.ID, "node", run.NodeName, "error", err)
		}
	}
	m.logger.Info("run deleted", "run_id", run.ID, "name", run.Name)
	return nil
}

// Logs copies a run's output to w, following it while it runs if follow is
// set. tail < 0 means all lines.
func (m *Manager) Logs(ctx context.Context, owner, ref string, follow bool, tail int, w io.Writer, flush func()) error {
	run, ar, err := m.find(owner, ref)
	if err != nil {
		return err
	}
	if m.elsewhere(run, ar) {
		if run, err = m.awaitPlaced(ctx, run, follow); err != nil {
			return err
		}
		if run.Node != "" && run.Node != m.cfg.NodeID && m.cfg.Remote != nil {
			return m.cfg.Remote.Logs(ctx, run, follow, tail, w, flush)
		}
		if run, ar, err = m.find(owner, run.ID); err != nil {
			return err
		}
	}
	rl := runlog.NewLog(m.logDir(run.ID), run.ID, m.cfg.Store.Keyring(), run.MaxLogBytes)
	var live runlog.Progress
	if ar != nil {
		// A follower lets go of the run with the agent.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-m.leaving:
				cancel()
			case <-ctx.Done():
			}
		}()
		watch := runlog.Watch(rl, ar.logEnded)
		defer watch.Close()
		live = watch
	} else if lr, err := runlog.OpenLegacy(m.legacyLogPath(run.ID), run.ID, m.cfg.Store.Keyring()); err == nil {
		defer lr.Close()
		err := runlog.CopyLegacy(lr, tail, w)
		flush()
		return err
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return rl.Copy(ctx, live, follow, tail, w, flush)
}

// Shutdown lets go of every active run, leaving it going for the next
// agent when Config.LeaveRunsOnShutdown is set and stopping it otherwise,
// and waits until that is done, or for ctx.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	n := len(m.active)
	if m.cfg.LeaveRunsOnShutdown {
		m.leaveOnce.Do(func() { close(m.leaving) })
	} else {
		for _, ar := range m.active {
			ar.requestStop("the agent is shutting down")
		}
	}
	m.mu.Unlock()
	if m.cfg.LeaveRunsOnShutdown {
		m.logger.Info("leaving runs going: the next agent on this data dir adopts them", "runs", n)
	} else if n > 0 {
		m.logger.Info("stopping the active runs (leave_runs_on_shutdown = false)", "runs", n)
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
