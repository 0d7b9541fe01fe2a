package config

import (
	"fmt"
	"net"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// DefaultRaftPort is the port of server agents' Raft traffic when
// raft_bind gives none.
const DefaultRaftPort = 4648

// ServerConfig is the server block: the agent is one of the servers that
// hold a cluster's state, replicated with Raft. Without it, or with
// enabled = false, the agent is a cluster of its own: its own one server.
type ServerConfig struct {
	// Enabled makes the agent a server of a cluster of several. Default
	// false.
	Enabled bool `hcl:"enabled,optional"`
	// BootstrapExpect is how many servers form the cluster first: they
	// wait for each other, then elect a leader. Give every server of a new
	// cluster the same number, 3 or 5. Default 1.
	BootstrapExpect int `hcl:"bootstrap_expect,optional"`
	// RetryJoin are other servers' API addresses, HOST:PORT, that the
	// agent contacts until it is in the cluster.
	RetryJoin []string `hcl:"retry_join,optional"`
	// RaftBind is the HOST:PORT of the servers' Raft traffic, which is
	// mutual TLS with the agent's certificates. Default the API bind's
	// host, port 4648.
	RaftBind string `hcl:"raft_bind,optional"`
	// RaftAdvertise is the HOST:PORT other servers dial for this one's
	// Raft traffic, when it is not raft_bind: behind a NAT or a proxy.
	RaftAdvertise string `hcl:"raft_advertise,optional"`
	// Advertise is the HOST:PORT of this server's API as other servers
	// reach it, to forward writes and reads; default the bind address.
	Advertise string `hcl:"advertise,optional"`
	// NodeTTL is how long the leader waits for a node's heartbeat before
	// it marks the node down, as a duration such as "30s": the node's runs
	// are then LOST, or placed again when they have retries left. Default
	// "30s"; at least "1s".
	NodeTTL string `hcl:"node_ttl,optional"`

	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// ServerEnabled reports whether the agent is a server of a cluster of
// several.
func (c *Config) ServerEnabled() bool { return c.Server != nil && c.Server.Enabled }

// RaftBindAddr returns raft_bind with its default filled in.
func (c *Config) RaftBindAddr() string {
	if c.Server != nil && c.Server.RaftBind != "" {
		return c.Server.RaftBind
	}
	host, _, _ := net.SplitHostPort(c.Bind)
	return net.JoinHostPort(host, fmt.Sprint(DefaultRaftPort))
}

// validateServer checks the server block.
func (c *Config) validateServer(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if !c.ServerEnabled() {
		return
	}
	s := c.Server
	decl := s.DeclRange
	if s.BootstrapExpect < 0 || s.BootstrapExpect > 9 {
		bad("server.bootstrap_expect", "Invalid server count",
			fmt.Sprintf("%d: give how many servers form the new cluster, such as 3 or 5 (at most 9), the same on each of them.", s.BootstrapExpect), &decl)
	}
	addrs := append(slices.Clone(s.RetryJoin), c.RaftBindAddr())
	for _, a := range []string{s.RaftAdvertise, s.Advertise} {
		if a != "" {
			addrs = append(addrs, a)
		}
	}
	for _, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("server.retry_join", "Invalid address", fmt.Sprintf("%q is not HOST:PORT: %v.", addr, err), &decl)
		}
	}
}

// CheckServer refuses a server without what it needs, once flags are
// applied: mutual TLS, as servers replicate the cluster's state to each
// other over it, and a data dir, where it keeps its share of that state.
func (c *Config) CheckServer(dev bool) error {
	if !c.ServerEnabled() {
		return nil
	}
	if c.TLS == nil || c.TLS.CAFile == "" || !c.TLS.VerifyIncoming {
		return fmt.Errorf("servers replicate the cluster's state to each other over mutual TLS: add a tls block with cert_file, key_file, " +
			"ca_file and verify_incoming = true (`hush tls ca create` and `hush tls cert create -server` make them)")
	}
	if c.DataDir == "" || dev {
		return fmt.Errorf("a server keeps its share of the cluster's state in its data dir: set data_dir (flag -data-dir), without -dev")
	}
	return nil
}
