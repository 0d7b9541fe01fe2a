package runs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

// In a cluster of servers (Config.Scheduled), a run is submitted to any
// server, which records it PENDING; the leader places it on a node; and
// the node's agent runs it (Execute), writing its record as it goes. The
// server that is asked about a run answers from the record, and reaches
// the run's node for its logs.

// Remote reaches the nodes that runs are placed on, from a server.
type Remote interface {
	// Logs copies the log of a run that another node runs, as
	// Manager.Logs does.
	Logs(ctx context.Context, run *store.Run, follow bool, tail int, w io.Writer, flush func()) error
	// Forget has the run's node remove what it keeps of a deleted run:
	// its log.
	Forget(ctx context.Context, run *store.Run) error
}

// Forget removes what this node keeps of one of owner's runs that the
// servers deleted: its record in this node's own store, if it has one,
// and its log.
func (m *Manager) Forget(ctx context.Context, owner, id string) error {
	if ar := m.activeRun(id); ar != nil {
		ar.requestStop("the servers deleted the run")
		select {
		case <-ar.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	run, err := m.cfg.Store.GetRun(owner, id)
	if err == nil && !run.Scheduled {
		return m.Delete(ctx, owner, id)
	}
	if err := os.RemoveAll(m.logDir(id)); err != nil {
		return fmt.Errorf("remove run log: %w", err)
	}
	return nil
}

func (m *Manager) activeRun(id string) *activeRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id]
}

// submitScheduled records a run for the leader to place.
func (m *Manager) submitScheduled(owner string, by Submitter, req *api.CreateRunRequest) (*store.Run, error) {
	if m.cfg.Feasible != nil {
		if err := m.cfg.Feasible(req); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	for try := 0; ; try++ {
		name, err := m.uniqueName(owner, req.Name)
		if err != nil {
			return nil, err
		}
		now := time.Now().UTC()
		run := m.newRun(owner, name, by, req, now)
		run.Scheduled, run.Runtime = true, ""
		run.Retries, run.Constraints = req.Retries, slices.Clone(req.Constraints)
		run.Events[0].Message += "; waiting to be placed on a node"
		err = m.cfg.Store.CreateRun(run)
		if errors.Is(err, store.ErrExists) && try < 8 {
			continue
		}
		if err != nil {
			return nil, err
		}
		m.logger.Info("run submitted", "run_id", run.ID, "name", run.Name, "user", owner)
		return run, nil
	}
}

// newRun makes the record of a run submitted now.
func (m *Manager) newRun(owner, name string, by Submitter, req *api.CreateRunRequest, now time.Time) *store.Run {
	run := &store.Run{
		ID: ulid.Make().String(), Name: name, Owner: owner,
		Image: req.Image, Command: req.Command, Env: req.Env, Secrets: req.Secrets,
		GPUs: req.GPUs, CPUs: req.CPUs, MemoryBytes: req.MemoryBytes, MaxDuration: time.Duration(req.MaxDuration),
		API: req.API, Management: by.Management, MaxLogBytes: cmp.Or(req.MaxLogBytes, m.cfg.MaxLogSize),
		Runtime: m.cfg.Runtime.Name(), Status: api.RunPending, CreatedAt: now,
		MaskSecrets: m.cfg.MaskSecrets,
		Refresh:     req.Refresh, SecretRefresh: maps.Clone(req.SecretRefresh),
	}
	if req.MaskSecrets != nil {
		run.MaskSecrets = *req.MaskSecrets
	}
	if by.RunID != "" {
		run.Parent, run.SecretLimit = by.RunID, slices.Clone(by.Secrets)
	}
	msg := "submitted"
	if name != req.Name {
		msg = fmt.Sprintf("submitted as %s: a run named %s exists", name, req.Name)
	}
	if by.RunID != "" {
		msg += "; launched by run " + by.RunID
	}
	run.Events = []store.RunEvent{{Time: now, Type: store.EventSubmitted, Message: msg}}
	return run
}

// Execute runs a run that the leader placed on this node, from its record.
// It does nothing for a run this node already runs, or once the agent
// shuts down. A run whose owner asked for it to stop (stop is why) ends
// STOPPED without starting: it is given no secret.
func (m *Manager) Execute(run *store.Run, stop string) error {
	if err := os.MkdirAll(m.logDir(run.ID), 0o700); err != nil {
		return fmt.Errorf("create run log: %w", err)
	}
	own := run.Clone()
	own.Runtime = m.cfg.Runtime.Name()
	ar := newActiveRun(own)
	m.mu.Lock()
	if m.closing || m.active[run.ID] != nil {
		m.mu.Unlock()
		return nil
	}
	m.active[run.ID] = ar
	m.wg.Add(2)
	m.mu.Unlock()
	if stop != "" {
		ar.requestStop(stop)
	}
	m.enqueue(ar)
	go m.saver(ar)
	go m.execute(ar)
	m.logger.Info("run placed here starts", "run_id", run.ID, "name", run.Name, "attempt", run.Attempt)
	return nil
}

// Active reports whether this node runs run id now.
func (m *Manager) Active(id string) bool { return m.activeRun(id) != nil }

// StopLocal stops run id if this node runs it, saying why.
func (m *Manager) StopLocal(id, reason string) {
	if ar := m.activeRun(id); ar != nil {
		ar.requestStop(reason)
	}
}

// ActiveIDs returns the ids of the runs this node runs now.
func (m *Manager) ActiveIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.active))
	for id := range m.active {
		ids = append(ids, id)
	}
	return ids
}

// elsewhere reports whether run is a scheduled run that this node does not
// run: the record is all this server has of it.
func (m *Manager) elsewhere(run *store.Run, ar *activeRun) bool {
	return ar == nil && run.Scheduled
}

// stopScheduled asks for a run that another node runs, or that waits to
// be placed, to stop: its node stops it, or the leader ends it before it
// is placed.
func (m *Manager) stopScheduled(run *store.Run, reason string) (*store.Run, error) {
	err := m.cfg.Store.RequestStop(run.ID, reason)
	if errors.Is(err, store.ErrConflict) {
		return run, &endedError{name: run.Name}
	}
	return run, err
}

// awaitDone waits until a scheduled run's record says it is done.
func (m *Manager) awaitDone(ctx context.Context, owner, id string) error {
	for {
		changed := m.cfg.Store.Changed()
		run, err := m.cfg.Store.GetRun(owner, id)
		if err != nil {
			return err
		}
		if run.Status.Done() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// onConflict handles a save that the store refused because the run is no
// longer placed here, in this attempt: the servers gave it up (its node
// was found lost) or placed it elsewhere. The workload stops, and nothing
// more of it is saved.
func (m *Manager) onConflict(ar *activeRun, err error) {
	m.mu.Lock()
	first := !ar.orphaned
	ar.orphaned = true
	m.mu.Unlock()
	if first {
		m.logger.Warn("the servers no longer have the run on this node; stopping it", "run_id", ar.run.ID, "error", err)
	}
	ar.requestStop("the servers no longer have the run on this node")
}

// awaitPlaced waits, when follow is set, until a scheduled run that waits
// for a node has one, or ends: its log is on that node.
func (m *Manager) awaitPlaced(ctx context.Context, run *store.Run, follow bool) (*store.Run, error) {
	for follow && run.Node == "" && !run.Status.Done() {
		changed := m.cfg.Store.Changed()
		var err error
		if run, err = m.cfg.Store.GetRun(run.Owner, run.ID); err != nil {
			return nil, err
		}
		if run.Node != "" || run.Status.Done() {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return run, nil
		}
	}
	return run, nil
}

// placedHere reports whether a scheduled run is placed on this node in its
// attempt, as this server's store has it; any other run is this agent's.
func (m *Manager) placedHere(run *store.Run) bool {
	if !run.Scheduled {
		return true
	}
	p, err := m.cfg.Store.PlacementOf(run.ID)
	return err == nil && p.Node == m.cfg.NodeID && p.Attempt == run.Attempt
}

// ActiveScheduled returns, by id, the attempt of each scheduled run this
// node runs now.
func (m *Manager) ActiveScheduled() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for id, ar := range m.active {
		if ar.run.Scheduled {
			out[id] = ar.run.Attempt
		}
	}
	return out
}
