package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// TransferLeadership hands this server's leadership to the most
// up-to-date other voter before it stops, so that the cluster has a
// leader again at once instead of after an election timeout: what makes a
// rolling restart of the servers go without a pause in writes. It does
// nothing on a node that does not lead or has no other voter, and is safe
// to call more than once; Shutdown calls it too. The agent calls it first
// on SIGTERM, while it still serves the writes that followers forward,
// which then go to the new leader.
func (n *Node) TransferLeadership() error {
	if n.cfg.Server == nil || n.raft.State() != raft.Leader || !n.hasOtherVoter() {
		return nil
	}
	start := time.Now()
	// raft bounds the transfer by its election timeout, after which this
	// server leads on (ErrLeadershipTransferInProgress clears).
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrRaftShutdown) {
			return nil
		}
		return fmt.Errorf("transfer leadership: %w", err)
	}
	_, to := n.raft.LeaderWithID()
	n.logger.Info("handed leadership over before shutting down", "leader_id", to, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// hasOtherVoter reports whether the raft configuration has a voter other
// than this node, which could take over its leadership.
func (n *Node) hasOtherVoter() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID != n.id && s.Suffrage == raft.Voter {
			return true
		}
	}
	return false
}
