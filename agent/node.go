package agent

import (
	"context"
	"net"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/cluster"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/nodes"
	"github.com/hush-sh/hush/agent/pki"
	"github.com/hush-sh/hush/agent/runs"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// nodeSetup is what the agent's node part needs.
type nodeSetup struct {
	cfg     *config.Config
	dataDir string
	st      *store.Store
	cluster *cluster.Node
	tlsSrv  *pki.Server
	manager *runs.Manager
	runtime string
	scheme  string
	apiAddr net.Addr
	version string
	front   *frontHandler
	logger  hclog.Logger
}

// startNode registers the agent's node, with the servers it is one of or
// the agent itself, and heartbeats; a server also takes the client agents'
// registrations and heartbeats, and marks down those that stop. The
// returned func stops all that.
func startNode(ctx context.Context, s nodeSetup) (func(), error) {
	id, err := nodes.LoadID(s.dataDir)
	if err != nil {
		return nil, err
	}
	ttl := nodes.DefaultTTL
	address := s.scheme + "://" + s.apiAddr.String()
	if s.cfg.ServerEnabled() && s.cfg.Server.Advertise != "" {
		address = s.scheme + "://" + s.cfg.Server.Advertise
	}
	self := store.Node{
		ID: id, Name: s.cfg.NodeName, Address: address, Server: s.cfg.ServerEnabled(), Runtime: s.runtime, Version: s.version,
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	if s.cfg.ServerEnabled() {
		s.front.setNodes(nodes.Handler(s.st, ttl, s.cluster.AuthorizeAgent, s.logger))
	}
	mon := &nodes.Monitor{Store: s.st, TTL: ttl, Leader: func() bool { return s.cluster.State() == "leader" }, Logger: s.logger}
	run(mon.Run)
	capacity := func() api.NodeCapacity { return s.manager.Capacity() }
	agent := nodes.NewAgent(self, nodes.LocalConn{Store: s.st, TTL: ttl}, capacity, s.logger)
	run(agent.Run)
	return func() { cancel(); wg.Wait() }, nil
}
