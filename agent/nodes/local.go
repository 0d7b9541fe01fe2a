package nodes

import (
	"context"
	"errors"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// LocalConn is a server's own node's line to the servers: the store, whose
// writes go through the cluster's log.
type LocalConn struct {
	Store *store.Store
	// TTL is the cluster's node TTL.
	TTL time.Duration
}

// Register records n.
func (c LocalConn) Register(_ context.Context, n *store.Node) (*Registration, error) {
	return register(c.Store, n, c.TTL)
}

// Heartbeat records that node id is up.
func (c LocalConn) Heartbeat(_ context.Context, id string, capacity api.NodeCapacity) error {
	return heartbeat(c.Store, id, capacity)
}

func register(st *store.Store, n *store.Node, ttl time.Duration) (*Registration, error) {
	if err := st.RegisterNode(n, time.Now()); err != nil {
		return nil, err
	}
	return &Registration{HeartbeatInterval: api.Duration(HeartbeatInterval(ttl))}, nil
}

func heartbeat(st *store.Store, id string, capacity api.NodeCapacity) error {
	err := st.NodeHeartbeat(id, time.Now(), capacity)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownNode
	}
	return err
}
