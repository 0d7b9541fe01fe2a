package nodes

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
)

// ClientRunner is the part of a client agent's run manager that runs what
// the servers place on its node.
type ClientRunner interface {
	Runner
	ActiveIDs() []string
	Watch(ctx context.Context, owner, ref string, index int) (*store.Run, error)
	Delete(ctx context.Context, owner, ref string) error
}

// ClientExecutor runs, on a client agent, the runs the servers placed on
// its node: it follows its assignments with blocking queries, keeps a copy
// of each run's record in the agent's own store (no secret is in it: the
// values reach the run's tmpfs only, through its grant), and reports each
// run's record back to the servers as it changes.
type ClientExecutor struct {
	Conn   *RemoteConn
	NodeID string
	// Local is the client agent's own store.
	Local  *store.Store
	Runs   ClientRunner
	Logger hclog.Logger

	mu        sync.Mutex
	reporters map[string]bool
}

// assignmentWait is how long a blocking query for assignments waits.
const assignmentWait = 30 * time.Second

// Run follows the node's assignments until ctx ends.
func (c *ClientExecutor) Run(ctx context.Context) {
	c.reporters = map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	hash, failing := "", false
	for ctx.Err() == nil {
		list, err := c.Conn.Assignments(ctx, c.NodeID, hash, assignmentWait)
		if err != nil {
			if !failing && ctx.Err() == nil && !errors.Is(err, ErrUnknownNode) {
				c.Logger.Warn("could not get the runs placed on this node from the servers; retrying", "error", err)
			}
			failing = true
			sleep(ctx, time.Second)
			continue
		}
		if failing {
			c.Logger.Info("the servers answer again")
			failing = false
		}
		hash = list.Hash
		c.reconcile(ctx, list, &wg)
	}
}

// reconcile starts the runs placed here that do not run yet, stops those
// their owner stops, and those the servers no longer have here.
func (c *ClientExecutor) reconcile(ctx context.Context, list *AssignmentList, wg *sync.WaitGroup) {
	placed := map[string]bool{}
	for _, a := range list.Runs {
		run := a.Run.run()
		placed[run.ID] = true
		if !c.Runs.Active(run.ID) {
			if err := c.start(ctx, run, a.Stop); err != nil {
				c.Logger.Error("could not start a run placed here", "run_id", run.ID, "error", err)
				continue
			}
		}
		c.follow(ctx, run, wg)
		if a.Stop != "" {
			c.Runs.StopLocal(run.ID, a.Stop)
		}
	}
	for _, id := range c.Runs.ActiveIDs() {
		if !placed[id] {
			c.Runs.StopLocal(id, "the servers no longer have the run on this node")
		}
	}
}

// start copies a run's record to the agent's store, unless it is there
// for this attempt, and runs it.
func (c *ClientExecutor) start(ctx context.Context, run *store.Run, stop string) error {
	local, err := c.Local.GetRun(run.Owner, run.ID)
	switch {
	case err == nil && local.Attempt == run.Attempt:
		// Started here before: it runs, or ended and is being
		// reported, or this agent restarted and found it lost.
		return nil
	case err == nil:
		// An earlier attempt that ran here.
		if err := c.Runs.Delete(ctx, local.Owner, local.ID); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	own := run.Clone()
	own.Scheduled = false // this store is the node's own: no placement guards it
	for try := 0; ; try++ {
		err := c.Local.CreateRun(own)
		if !errors.Is(err, store.ErrExists) || try > 0 {
			if err != nil {
				return err
			}
			break
		}
		// A run of that name that the servers have since deleted.
		old, err := c.Local.RunByName(run.Owner, run.Name)
		if err != nil {
			return err
		}
		if err := c.Runs.Delete(ctx, old.Owner, old.ID); err != nil {
			return err
		}
	}
	return c.Runs.Execute(own, stop)
}

// follow reports run's record to the servers as it changes, until it has
// reported its end, unless a reporter does already.
func (c *ClientExecutor) follow(ctx context.Context, run *store.Run, wg *sync.WaitGroup) {
	c.mu.Lock()
	if c.reporters[run.ID] {
		c.mu.Unlock()
		return
	}
	c.reporters[run.ID] = true
	c.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.reporters, run.ID)
			c.mu.Unlock()
		}()
		c.report(ctx, run.Owner, run.ID)
	}()
}

func (c *ClientExecutor) report(ctx context.Context, owner, id string) {
	index := -1
	for ctx.Err() == nil {
		run, err := c.Runs.Watch(ctx, owner, id, index)
		if err != nil {
			c.Logger.Error("could not read a run to report it", "run_id", id, "error", err)
			return
		}
		for {
			err := c.Conn.Report(ctx, c.NodeID, run)
			if err == nil || ctx.Err() != nil {
				break
			}
			if errors.Is(err, ErrNotPlaced) {
				c.Runs.StopLocal(id, "the servers no longer have the run on this node")
				return
			}
			c.Logger.Warn("could not report a run to the servers; retrying", "run_id", id, "error", err)
			sleep(ctx, time.Second)
		}
		if run.Status.Done() {
			return
		}
		if !c.Runs.Active(id) {
			// Not run here any more, and not ended: this agent
			// restarted and has yet to adopt it.
			sleep(ctx, time.Second)
		}
		index = len(run.Events)
	}
}
