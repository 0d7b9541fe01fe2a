package nodes

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Monitor, on the leader, marks down the nodes that have not heartbeat for
// longer than the TTL.
type Monitor struct {
	Store *store.Store
	TTL   time.Duration
	// Leader reports whether this server leads the cluster.
	Leader func() bool
	Logger hclog.Logger
	// now is time.Now, but for tests.
	now func() time.Time
}

// Run checks the nodes until ctx ends. A server that has just become the
// leader waits a TTL before it marks anything down: heartbeats failed
// while the cluster had no leader, through no fault of the nodes.
func (m *Monitor) Run(ctx context.Context) {
	if m.now == nil {
		m.now = time.Now
	}
	var leaderSince time.Time
	tick := time.NewTicker(max(m.TTL/4, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !m.Leader() {
			leaderSince = time.Time{}
			continue
		}
		if leaderSince.IsZero() {
			leaderSince = m.now()
		}
		if m.now().Sub(leaderSince) < m.TTL {
			continue
		}
		m.check()
	}
}

// check marks down every ready node last seen more than a TTL ago.
func (m *Monitor) check() {
	nodes, err := m.Store.ListNodes()
	if err != nil {
		m.Logger.Error("could not list the nodes to check their heartbeats", "error", err)
		return
	}
	for _, n := range nodes {
		late := m.now().Sub(n.LastSeen)
		if n.Status != api.NodeReady || late <= m.TTL {
			continue
		}
		err := m.Store.MarkNodeDown(n.ID, n.LastSeen)
		switch {
		case errors.Is(err, store.ErrConflict):
			// It heartbeat meanwhile.
		case err != nil:
			m.Logger.Error("could not mark a node down", "node", n.Name, "node_id", n.ID, "error", err)
		default:
			m.Logger.Warn("node is down: no heartbeat within node_ttl", "node", n.Name, "node_id", n.ID,
				"last_seen", n.LastSeen.Format(time.RFC3339), "node_ttl", m.TTL)
		}
	}
}
