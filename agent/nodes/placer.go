package nodes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/sched"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Placer, on the leader, places the runs that wait for a node, in the
// order they were submitted, with sched.Place; ends those stopped before
// they were placed; and, for the runs of nodes marked down, places them
// again while they have retries left, or ends them LOST.
//
// Every write is made as of the run's placement as read (store.Guard), so
// that a placer of a former leader, or a write racing this one, cannot
// place a run twice: the second write is refused and the next pass reads
// again.
type Placer struct {
	Store *store.Store
	// TTL is the node TTL: a node not seen for that long takes no runs,
	// even before the monitor marks it down (as one restored from a
	// snapshot, which no agent runs).
	TTL    time.Duration
	Leader func() bool
	Logger hclog.Logger

	// waiting holds, by run id, the reason last recorded for a run that
	// waits, so that each new reason is one event.
	waiting map[string]string
}

// placerTick bounds how long a change the placer is not woken for (a
// node's capacity, a new leader) waits.
const placerTick = time.Second

// Run places runs until ctx ends, at each write to the store.
func (p *Placer) Run(ctx context.Context) {
	p.waiting = map[string]string{}
	tick := time.NewTicker(placerTick)
	defer tick.Stop()
	for {
		changed := p.Store.Changed()
		if p.Leader() {
			if err := p.pass(); err != nil && ctx.Err() == nil {
				p.Logger.Error("could not place runs", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// pass looks at every run that waits or runs once.
func (p *Placer) pass() error {
	nodes, err := p.Store.ListNodes()
	if err != nil {
		return err
	}
	placements, err := p.Store.Placements()
	if err != nil {
		return err
	}
	snap := Free(nodes, placements)
	for i, n := range nodes {
		if time.Since(n.LastSeen) > p.TTL {
			snap[i].Status = sched.StatusDown
		}
	}
	byID := make(map[string]*store.Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	var errs []error
	for _, pl := range placements {
		var err error
		switch node := byID[pl.Node]; {
		case pl.Node == "" && pl.Stop != "":
			err = p.end(pl, api.RunStopped, store.EventStopped, "stopped before it was placed: "+pl.Stop)
		case pl.Node == "":
			err = p.place(pl, snap)
		case node == nil || node.Status == api.NodeDown:
			err = p.lose(pl, node)
		}
		if err != nil && !errors.Is(err, store.ErrConflict) {
			errs = append(errs, fmt.Errorf("run %s: %w", pl.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Free returns the scheduler's view of nodes: each node's capacity less
// what the runs placed on it ask for.
func Free(nodes []*store.Node, placements []*store.Placement) []sched.Node {
	out := make([]sched.Node, len(nodes))
	idx := make(map[string]int, len(nodes))
	for i, n := range nodes {
		c := n.Capacity
		out[i] = sched.Node{
			ID: n.ID, Name: n.Name, Runtime: n.Runtime, Status: sched.NodeStatus(n.Status), Draining: n.Drain,
			GPUs: c.GPUs, FreeGPUs: c.GPUs, CPUMillis: millis(c.CPUs), FreeCPUMillis: millis(c.CPUs),
			MemoryBytes: c.MemoryBytes, FreeMemoryBytes: c.MemoryBytes, Labels: n.Labels(),
		}
		idx[n.ID] = i
	}
	for _, pl := range placements {
		if i, ok := idx[pl.Node]; ok {
			take(&out[i], request(pl))
		}
	}
	return out
}

func take(n *sched.Node, req sched.Request) {
	n.FreeGPUs -= req.GPUs
	n.FreeCPUMillis -= req.CPUMillis
	n.FreeMemoryBytes -= req.MemoryBytes
}

func millis(cpus float64) int64 { return int64(cpus*1000 + 0.5) }

func request(pl *store.Placement) sched.Request {
	req := sched.Request{Runtime: pl.Runtime, GPUs: pl.GPUs, CPUMillis: millis(pl.CPUs), MemoryBytes: pl.MemoryBytes}
	for _, c := range pl.Constraints {
		req.Constraints = append(req.Constraints, sched.Constraint{Key: c.Key, Op: c.Op, Value: c.Value})
	}
	return req
}

// Feasible refuses a run that no node of nodes could take even with
// nothing else on it.
func Feasible(st *store.Store, req *api.CreateRunRequest) error {
	nodes, err := st.ListNodes()
	if err != nil {
		return err
	}
	pl := &store.Placement{GPUs: req.GPUs, CPUs: req.CPUs, MemoryBytes: req.MemoryBytes, Constraints: req.Constraints}
	_, err = sched.Place(Free(nodes, nil), request(pl))
	var u *sched.Unplaceable
	if errors.As(err, &u) && u.Never {
		return fmt.Errorf("no node of the cluster can ever take this run: %s", u.Reason)
	}
	if err != nil && !errors.As(err, &u) {
		return err
	}
	return nil
}

// place places one waiting run, or records why it waits.
func (p *Placer) place(pl *store.Placement, snap []sched.Node) error {
	req := request(pl)
	id, err := sched.Place(snap, req)
	var u *sched.Unplaceable
	if errors.As(err, &u) {
		if p.waiting[pl.ID] == u.Reason {
			return nil
		}
		run, err := p.Store.GetRun(pl.Owner, pl.ID)
		if err != nil {
			return err
		}
		saved := len(run.Events)
		run.Events = append(run.Events, store.RunEvent{Time: time.Now().UTC(), Type: store.EventWaiting, Message: "waiting for a node: " + u.Reason})
		if err := p.Store.SaveRunAs(run, saved, store.Guard{Attempt: pl.Attempt, Version: pl.Version}, nil); err != nil {
			return err
		}
		p.waiting[pl.ID] = u.Reason
		return nil
	}
	if err != nil {
		return err
	}
	var node *sched.Node
	for i := range snap {
		if snap[i].ID == id {
			node = &snap[i]
		}
	}
	run, err := p.Store.GetRun(pl.Owner, pl.ID)
	if err != nil {
		return err
	}
	saved := len(run.Events)
	attempt := pl.Attempt + 1
	run.Node, run.NodeName, run.Attempt = node.ID, node.Name, attempt
	msg := "placed on node " + node.Name
	if attempt > 1 {
		msg += fmt.Sprintf(" (attempt %d of %d)", attempt, run.Retries+1)
	}
	run.Events = append(run.Events, store.RunEvent{Time: time.Now().UTC(), Type: store.EventPlaced, Message: msg})
	err = p.Store.SaveRunAs(run, saved, store.Guard{Attempt: pl.Attempt, Version: pl.Version},
		&store.Move{Node: node.ID, NodeName: node.Name, Attempt: attempt})
	if err != nil {
		return err
	}
	take(node, req)
	delete(p.waiting, pl.ID)
	p.Logger.Info("run placed", "run_id", pl.ID, "node", node.Name, "attempt", attempt)
	return nil
}

// lose handles a run whose node is down (or gone): placed again when it
// has retries left, LOST otherwise.
func (p *Placer) lose(pl *store.Placement, node *store.Node) error {
	name := pl.NodeName
	if node != nil {
		name = node.Name
	}
	run, err := p.Store.GetRun(pl.Owner, pl.ID)
	if err != nil {
		return err
	}
	if pl.Attempt > run.Retries || pl.Stop != "" {
		msg := fmt.Sprintf("node %s was lost: no heartbeat within node_ttl", name)
		if pl.Attempt > 1 || run.Retries > 0 {
			msg += fmt.Sprintf("; no retries left (retries: %d)", run.Retries)
		}
		return p.end(pl, api.RunLost, store.EventLost, msg)
	}
	saved := len(run.Events)
	now := time.Now().UTC()
	run.Node, run.NodeName, run.Status, run.StartedAt, run.Devices = "", "", api.RunPending, nil, nil
	run.Events = append(run.Events, store.RunEvent{Time: now, Type: store.EventLost,
		Message: fmt.Sprintf("node %s was lost: no heartbeat within node_ttl; placing the run again (retries: %d)", name, run.Retries)})
	err = p.Store.SaveRunAs(run, saved, store.Guard{Node: pl.Node, Attempt: pl.Attempt, Version: pl.Version}, &store.Move{Attempt: pl.Attempt})
	if err == nil {
		p.Logger.Warn("run's node was lost; placing it again", "run_id", pl.ID, "node", name, "attempt", pl.Attempt)
	}
	return err
}

// end gives a run that no node runs its final status.
func (p *Placer) end(pl *store.Placement, status api.RunStatus, typ store.EventType, msg string) error {
	run, err := p.Store.GetRun(pl.Owner, pl.ID)
	if err != nil {
		return err
	}
	saved := len(run.Events)
	now := time.Now().UTC()
	run.Status, run.EndedAt = status, &now
	if status == api.RunLost {
		run.Error = msg
	}
	run.Events = append(run.Events, store.RunEvent{Time: now, Type: typ, Message: msg})
	err = p.Store.SaveRunAs(run, saved, store.Guard{Node: pl.Node, Attempt: pl.Attempt, Version: pl.Version}, nil)
	if err == nil {
		delete(p.waiting, pl.ID)
		p.Logger.Info("run ended by the servers", "run_id", pl.ID, "status", status, "why", msg)
	}
	return err
}
