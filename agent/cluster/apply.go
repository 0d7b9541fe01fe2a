package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// errRetry marks a failure after which nothing was applied, so the caller
// may try again, on whichever server is leader by then.
var errRetry = errors.New("not applied; try again")

// errShutdown is returned once Shutdown has begun.
var errShutdown = errors.New("the cluster node is shutting down")

// Apply replicates cmd and returns what the FSM's Apply returned for it.
// On the leader it is a raft apply, acknowledged once the command is
// committed and applied; a follower forwards it to the leader. While there
// is no leader it waits up to Config.LeaderWait (or ctx), then returns an
// error matching ErrNoLeader. An error of the FSM travels in the result;
// Apply's own error is a failure to replicate (ErrNoLeader: nothing was
// applied; ErrOutcomeUnknown: it may have been).
func (n *Node) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	var res []byte
	err := n.onLeader(ctx, func(ctx context.Context) error {
		var err error
		res, err = n.applyLocal(ctx, cmd)
		return err
	}, func(ctx context.Context, leader Member) error {
		var err error
		res, err = n.forwardApply(ctx, leader, cmd)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply command: %w", err)
	}
	return res, nil
}

// applyLocal applies cmd on this node as leader.
func (n *Node) applyLocal(ctx context.Context, cmd []byte) ([]byte, error) {
	f := n.raft.Apply(cmd, n.cfg.LeaderWait)
	if err := waitFuture(ctx, f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, fmt.Errorf("%w: %w", errRetry, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, errShutdown
		default:
			// Leadership lost, or ctx ended, after the entry was
			// dispatched: it may still commit.
			return nil, fmt.Errorf("%w (%w)", ErrOutcomeUnknown, err)
		}
	}
	res, _ := f.Response().([]byte)
	return res, nil
}

// Barrier returns once this node's FSM holds every write acknowledged
// before Barrier was called, so that a read after it is linearizable.
//
// The leader confirms that it still leads (VerifyLeader) and that its FSM
// has applied every entry of earlier terms (a raft barrier once per term);
// its FSM's applied index is then the read index. A follower asks the
// leader for that index and waits until its own FSM has applied it. The
// FSM's applied index is used rather than raft's commit index because raft
// gives the FSM commands only: a commit index that ends on a no-op or
// configuration entry is never reached by AppliedIndex.
func (n *Node) Barrier(ctx context.Context) error {
	if n.cfg.Server == nil {
		// A cluster of one: its every acknowledged write was applied here
		// before it was acknowledged.
		return nil
	}
	var idx uint64
	err := n.onLeader(ctx, func(ctx context.Context) error {
		var err error
		idx, err = n.readIndexLocal()
		return err
	}, func(ctx context.Context, leader Member) error {
		var r readIndexResponse
		err := n.call(ctx, leader.APIAddr, "read-index", nil, &r)
		idx = r.Index
		return err
	})
	if err != nil {
		return fmt.Errorf("consistent read: %w", err)
	}
	return n.waitApplied(ctx, idx)
}

// readIndexLocal returns the read index on the leader.
func (n *Node) readIndexLocal() (uint64, error) {
	if n.readyTerm.Load() != n.raft.CurrentTerm() {
		if err := n.becomeReady(); err != nil {
			return 0, err
		}
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		if errors.Is(err, raft.ErrRaftShutdown) {
			return 0, errShutdown
		}
		// A read changes nothing: always safe to retry.
		return 0, fmt.Errorf("%w: %w", errRetry, err)
	}
	return n.fsm.fsm.AppliedIndex(), nil
}

// becomeReady commits a barrier in the current term, after which the
// leader's FSM holds every entry committed before the term began.
func (n *Node) becomeReady() error {
	term := n.raft.CurrentTerm()
	if err := n.raft.Barrier(n.cfg.LeaderWait).Error(); err != nil {
		if errors.Is(err, raft.ErrRaftShutdown) {
			return errShutdown
		}
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	n.readyTerm.Store(term)
	return nil
}

// waitApplied waits until the FSM has applied idx, for at most twice
// LeaderWait.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	t := time.NewTimer(2 * n.cfg.LeaderWait)
	defer t.Stop()
	for {
		ch := n.fsm.changed()
		applied := n.fsm.fsm.AppliedIndex()
		if applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for this server to apply index %d (it is at %d): %w", idx, applied, ctx.Err())
		case <-t.C:
			return fmt.Errorf("consistent read: this server is behind the leader (applied index %d of %d) and did not catch up in %s; retry, or ask another server", applied, idx, 2*n.cfg.LeaderWait)
		case <-n.stop:
			return errShutdown
		}
	}
}

// onLeader runs local when this node leads and remote when another does,
// until one returns something other than errRetry, waiting up to
// LeaderWait for a leader to be elected and known.
func (n *Node) onLeader(ctx context.Context, local func(context.Context) error, remote func(context.Context, Member) error) error {
	deadline := time.Now().Add(n.cfg.LeaderWait)
	var last error
	for {
		select {
		case <-n.stop:
			return errShutdown
		default:
		}
		leader, ok := n.Leader()
		var err error
		retry := true
		switch {
		case !ok:
			err = errors.New("no leader known")
		case leader.ID == string(n.id):
			err = local(ctx)
			retry = errors.Is(err, errRetry)
		case leader.APIAddr == "" || n.client == nil:
			err = fmt.Errorf("the API address of leader %s is not known yet", leader.ID)
		default:
			err = remote(ctx, leader)
			retry = errors.Is(err, errRetry)
		}
		if err == nil || !retry {
			return err
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (last: %v)", ErrNoLeader, last)
		}
		wait := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("%w (%w; last: %v)", ErrNoLeader, ctx.Err(), last)
		case <-n.stop:
			wait.Stop()
			return errShutdown
		case <-wait.C:
		}
	}
}

// waitFuture waits for f or ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
