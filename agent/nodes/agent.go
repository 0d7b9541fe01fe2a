package nodes

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Agent keeps one node registered with the servers and heartbeating.
type Agent struct {
	node     store.Node
	conn     Conn
	capacity func() api.NodeCapacity
	logger   hclog.Logger
}

// NewAgent returns an agent for node, which says what it has free with
// capacity, over conn.
func NewAgent(node store.Node, conn Conn, capacity func() api.NodeCapacity, logger hclog.Logger) *Agent {
	return &Agent{node: node, conn: conn, capacity: capacity, logger: logger}
}

// retryWait is how long the agent waits after a failed registration.
const retryWait = 2 * time.Second

// Run registers the node and heartbeats until ctx ends. It logs when the
// servers stop or start answering, not every failure.
func (a *Agent) Run(ctx context.Context) {
	var interval time.Duration
	failing := false
	for ctx.Err() == nil {
		if interval == 0 {
			n := a.node
			n.Capacity = a.capacity()
			reg, err := a.conn.Register(ctx, &n)
			if err != nil {
				if !failing && ctx.Err() == nil {
					a.logger.Warn("could not register the node with the servers; retrying", "error", err)
				}
				failing = true
				sleep(ctx, retryWait)
				continue
			}
			interval = time.Duration(reg.HeartbeatInterval)
			a.logger.Info("registered the node with the servers", "node_id", a.node.ID, "heartbeat_interval", interval)
			failing = false
		}
		sleep(ctx, interval)
		err := a.conn.Heartbeat(ctx, a.node.ID, a.capacity())
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, ErrUnknownNode):
			a.logger.Warn("the servers do not know the node; registering it again")
			interval = 0
		case err != nil:
			if !failing {
				a.logger.Warn("could not heartbeat to the servers; retrying: the servers mark the node down once its heartbeats stop for node_ttl", "error", err)
			}
			failing = true
		case failing:
			a.logger.Info("heartbeats reach the servers again")
			failing = false
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
