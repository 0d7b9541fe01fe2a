package cluster

import (
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the state machine the node replicates commands into (the agent's
// store implements it).
type FSM interface {
	// Apply applies one committed command at raft index idx and returns
	// its encoded result. It must be idempotent for idx <= AppliedIndex():
	// the FSM persists its state, and raft replays the log tail after a
	// restart.
	Apply(idx uint64, cmd []byte) []byte
	// AppliedIndex is the raft index of the last command applied.
	AppliedIndex() uint64
	// Snapshot writes a consistent copy of the whole state, including its
	// applied index. It runs while Apply goes on (raft persists snapshots
	// off its apply loop), so it must take its own consistent view; a
	// copy that is ahead of the index raft files it under is harmless,
	// since Apply skips what the copy already holds.
	Snapshot(w io.Writer) error
	// Restore replaces the state with a snapshot's.
	Restore(r io.Reader) error
}

// FreshLogFSM is an FSM that can take the next log as a new one, from its
// first entry: what a cluster of one, which keeps its log in memory and
// begins a new one at each start, needs of its state machine.
type FreshLogFSM interface {
	FSM
	// ForgetAppliedIndex makes the FSM apply the next log from index 1.
	ForgetAppliedIndex() error
}

// BatchFSM is an FSM that applies the commands raft committed together in
// one write of its state, as a store that syncs each write to disk wants.
type BatchFSM interface {
	FSM
	// ApplyBatch applies committed commands, idx[i] the index of cmds[i],
	// in order, and returns each one's result, as Apply does.
	ApplyBatch(idx []uint64, cmds [][]byte) [][]byte
}

// batchAdapter is the raft.BatchingFSM over a BatchFSM.
type batchAdapter struct {
	*fsmAdapter
	batch BatchFSM
}

var _ raft.BatchingFSM = (*batchAdapter)(nil)

// ApplyBatch passes the command entries on; raft also sends configuration
// entries here, which are not the FSM's and answer nil.
func (a *batchAdapter) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var idx []uint64
	var cmds [][]byte
	var at []int
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			idx, cmds, at = append(idx, l.Index), append(cmds, l.Data), append(at, i)
		}
	}
	if len(cmds) > 0 {
		for j, res := range a.batch.ApplyBatch(idx, cmds) {
			out[at[j]] = res
		}
		a.notify()
	}
	return out
}

// fsmAdapter is the raft.FSM over an FSM. It also wakes waiters each time
// the applied index moves, for Barrier on followers.
type fsmAdapter struct {
	fsm FSM
	// durable says raft's snapshots are only to compact its log: the FSM
	// keeps its state on disk itself and no other server ever installs
	// one, so they hold nothing.
	durable bool

	mu      sync.Mutex
	applied chan struct{} // closed and replaced after every apply or restore
}

var _ raft.FSM = (*fsmAdapter)(nil)

func newFSMAdapter(fsm FSM) *fsmAdapter {
	return &fsmAdapter{fsm: fsm, applied: make(chan struct{})}
}

// Apply passes a command entry on with its index; raft hands the FSM no
// other kind of entry.
func (a *fsmAdapter) Apply(l *raft.Log) any {
	res := a.fsm.Apply(l.Index, l.Data)
	a.notify()
	return res
}

func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	if a.durable {
		return emptySnapshot{}, nil
	}
	return &fsmSnapshot{fsm: a.fsm}, nil
}

func (a *fsmAdapter) Restore(r io.ReadCloser) error {
	defer r.Close()
	if err := a.fsm.Restore(r); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	a.notify()
	return nil
}

func (a *fsmAdapter) notify() {
	a.mu.Lock()
	close(a.applied)
	a.applied = make(chan struct{})
	a.mu.Unlock()
}

// changed returns a channel closed the next time the applied index moves.
func (a *fsmAdapter) changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// fsmSnapshot writes the FSM's state when raft persists the snapshot,
// which it does off the apply loop, so writes are not held up.
type fsmSnapshot struct {
	fsm FSM
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.fsm.Snapshot(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// emptySnapshot is the snapshot of a durable FSM in a cluster of one.
type emptySnapshot struct{}

func (emptySnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (emptySnapshot) Release()                             {}
