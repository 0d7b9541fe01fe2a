package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// NodeStatus is one node's own view of raft.
type NodeStatus struct {
	ID string `json:"id"`
	// State is leader, follower, candidate or shutdown.
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LeaderID is who this node takes for the leader; empty if none.
	LeaderID string `json:"leader_id"`
}

// MemberStatus is a server of the raft configuration as Members found it.
type MemberStatus struct {
	Member
	Voter bool `json:"voter"`
	// Leader tells whether the asking node takes it for the leader.
	Leader bool `json:"leader"`
	// Healthy tells whether it answered; Status is its answer and Error
	// why it did not.
	Healthy bool       `json:"healthy"`
	Status  NodeStatus `json:"status"`
	Error   string     `json:"error,omitempty"`
}

// Status returns this node's own view of raft.
func (n *Node) Status() NodeStatus {
	_, leader := n.raft.LeaderWithID()
	return NodeStatus{
		ID:           string(n.id),
		State:        stateName(n.raft.State()),
		Term:         n.raft.CurrentTerm(),
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.fsm.AppliedIndex(),
		LeaderID:     string(leader),
	}
}

// State is this node's raft state: leader, follower, candidate or
// shutdown.
func (n *Node) State() string { return stateName(n.raft.State()) }

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	default:
		return "shutdown"
	}
}

// Stats returns raft's own counters (term, indexes, last contact, ...).
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// Leader returns the server this node takes for the leader, and false if
// there is none right now. A leader whose API address is not known yet
// comes back with its ID and raft address only.
func (n *Node) Leader() (Member, bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return Member{}, false
	}
	if id == n.id {
		return n.self(), true
	}
	if n.members != nil {
		if m, ok := n.members.get(string(id)); ok {
			return m, true
		}
	}
	return Member{ID: string(id), RaftAddr: string(addr)}, true
}

// self is this node's own entry.
func (n *Node) self() Member {
	if n.members != nil {
		if m, ok := n.members.get(string(n.id)); ok {
			return m
		}
	}
	return Member{ID: string(n.id), RaftAddr: "local"}
}

// Members returns the servers of the raft configuration, each asked for
// its status in parallel (bounded by ctx and 2 s each).
func (n *Node) Members(ctx context.Context) ([]MemberStatus, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	servers := f.Configuration().Servers
	out := make([]MemberStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		ms := MemberStatus{Member: Member{ID: string(s.ID), RaftAddr: string(s.Address)},
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader}
		if s.ID == n.id {
			ms.Member = n.self()
			ms.Healthy, ms.Status = true, n.Status()
			out[i] = ms
			continue
		}
		m, ok := Member{}, false
		if n.members != nil {
			m, ok = n.members.get(string(s.ID))
		}
		if !ok {
			ms.Error = "its API address is not known yet"
			out[i] = ms
			continue
		}
		ms.Member = m
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := n.call(cctx, m.APIAddr, "status", nil, &ms.Status); err != nil {
				ms.Error = err.Error()
			} else {
				ms.Healthy = true
			}
			out[i] = ms
		}()
	}
	wg.Wait()
	return out, nil
}

// RemovePeer removes server id from the raft configuration, through the
// leader. It is for servers that are gone for good: a removed server that
// still runs asks to join again and is let back in.
func (n *Node) RemovePeer(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("remove peer: no server id given")
	}
	return n.onLeader(ctx, func(ctx context.Context) error {
		return n.removeLocal(id)
	}, func(ctx context.Context, leader Member) error {
		return n.call(ctx, leader.APIAddr, "remove-peer", removeRequest{ID: id}, nil)
	})
}

func (n *Node) removeLocal(id string) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || s.ID == raft.ServerID(id)
	}
	if !found {
		return fmt.Errorf("remove peer %q: no such server in the raft configuration; list them with `hush operator raft list-peers`", id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return fmt.Errorf("remove peer %q: %w", id, err)
	}
	n.logger.Info("removed server from the cluster", "server_id", id)
	return nil
}

// watchLeadership logs leadership changes and, on winning an election,
// makes the new leader ready for consistent reads.
func (n *Node) watchLeadership() {
	ch := make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case <-n.stop:
				return
			case o := <-ch:
				lo := o.Data.(raft.LeaderObservation)
				switch lo.LeaderID {
				case "":
					n.logger.Info("cluster has no leader; an election is under way")
				case n.id:
					n.logger.Info("this server is now the cluster leader", "term", strconv.FormatUint(n.raft.CurrentTerm(), 10))
					n.wg.Add(1)
					go func() {
						defer n.wg.Done()
						n.becomeReady()
					}()
				default:
					n.logger.Info("cluster leader changed", "leader_id", lo.LeaderID, "leader_raft_addr", lo.LeaderAddr)
				}
			}
		}
	}()
}
