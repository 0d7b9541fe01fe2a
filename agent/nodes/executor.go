package nodes

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Runner is the part of the run manager that runs what is placed here.
type Runner interface {
	Execute(run *store.Run, stop string) error
	Active(id string) bool
	StopLocal(id, reason string)
}

// ServerRunner is a server's run manager, which shares the cluster's
// records.
type ServerRunner interface {
	Runner
	ActiveScheduled() map[string]int
}

// Executor, on a server that runs workloads, starts the runs the leader
// placed on its node, and stops those whose owner asked for it.
type Executor struct {
	Store  *store.Store
	NodeID string
	Runs   ServerRunner
	Logger hclog.Logger
}

// Run follows the placements until ctx ends.
func (e *Executor) Run(ctx context.Context) {
	tick := time.NewTicker(placerTick)
	defer tick.Stop()
	for {
		changed := e.Store.Changed()
		e.pass()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

func (e *Executor) pass() {
	placements, err := e.Store.Placements()
	if err != nil {
		e.Logger.Error("could not read the runs placed here", "error", err)
		return
	}
	mine := map[string]int{}
	for _, pl := range placements {
		if pl.Node != e.NodeID {
			continue
		}
		mine[pl.ID] = pl.Attempt
		if !e.Runs.Active(pl.ID) {
			run, err := e.Store.GetRun(pl.Owner, pl.ID)
			if err != nil {
				e.Logger.Error("could not read a run placed here", "run_id", pl.ID, "error", err)
				continue
			}
			// A run that started here before the agent restarted is
			// the run manager's to adopt, or to find lost.
			if run.Status != api.RunPending || run.Attempt != pl.Attempt {
				continue
			}
			if err := e.Runs.Execute(run, pl.Stop); err != nil {
				e.Logger.Error("could not start a run placed here", "run_id", pl.ID, "error", err)
			}
			continue
		}
		if pl.Stop != "" {
			e.Runs.StopLocal(pl.ID, pl.Stop)
		}
	}
	// Runs the servers gave up on here, or placed again elsewhere, while
	// this server was cut off from them.
	for id, attempt := range e.Runs.ActiveScheduled() {
		if a, ok := mine[id]; !ok || a != attempt {
			e.Runs.StopLocal(id, "the servers no longer have the run on this node")
		}
	}
}
