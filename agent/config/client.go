package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultNodeTTL is how long the leader waits for a node's heartbeat
// before it marks the node down, when node_ttl is not set.
const DefaultNodeTTL = "30s"

// minNodeTTL keeps node_ttl above the heartbeat interval's noise: below
// a second, a busy node would flap between ready and down.
const minNodeTTL = time.Second

// NodeClassLabel is the label that run constraints match against the
// client block's node_class; meta keys may not take it.
const NodeClassLabel = "node_class"

// ClientConfig is the client block: the agent runs the workloads that the
// servers place on its node. A plain agent, a one-node cluster, runs
// workloads; so does a server, unless its client block says enabled =
// false; a client-only agent has enabled = true and the servers'
// addresses.
type ClientConfig struct {
	// Enabled makes the agent run workloads; without a server block it
	// makes the agent a client of the servers in Servers. nil when not
	// written: a server, or a plain agent, then runs workloads too.
	Enabled *bool `hcl:"enabled,optional"`
	// Servers are the API addresses, HOST:PORT, of the cluster's server
	// agents, which a client-only agent registers with and takes its
	// runs from. Required for a client-only agent.
	Servers []string `hcl:"servers,optional"`
	// NodeClass is the node's class, such as "gpu", which run
	// constraints match as the label "node_class". Default none.
	NodeClass string `hcl:"node_class,optional"`
	// Meta are the node's labels, such as { rack = "r1" }, which run
	// constraints match by key. Default none.
	Meta map[string]string `hcl:"meta,optional"`
	// Advertise is the HOST:PORT the servers reach this node's API at,
	// for its runs' logs. Default the bind address, which must then be
	// a specific IP.
	Advertise string `hcl:"advertise,optional"`

	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// ClientEnabled reports whether the client block says enabled = true.
func (c *Config) ClientEnabled() bool {
	return c.Client != nil && c.Client.Enabled != nil && *c.Client.Enabled
}

// ClientOnly reports whether the agent is a client of other servers: its
// client is enabled, and it is not a server itself.
func (c *Config) ClientOnly() bool { return c.ClientEnabled() && !c.ServerEnabled() }

// RunsWorkloads reports whether runs are placed on this node: always,
// unless the client block says enabled = false.
func (c *Config) RunsWorkloads() bool {
	return c.Client == nil || c.Client.Enabled == nil || *c.Client.Enabled
}

// ClientServers returns the servers' addresses a client-only agent
// contacts.
func (c *Config) ClientServers() []string {
	if c.Client == nil {
		return nil
	}
	return slices.Clone(c.Client.Servers)
}

// NodeLabels returns what run constraints match on this node: its meta,
// and its node_class as the label "node_class" when it has one.
func (c *Config) NodeLabels() map[string]string {
	labels := map[string]string{}
	if c.Client == nil {
		return labels
	}
	maps.Copy(labels, c.Client.Meta)
	if c.Client.NodeClass != "" {
		labels[NodeClassLabel] = c.Client.NodeClass
	}
	return labels
}

// NodeTTL returns the server block's node_ttl, or its default. Call it
// only on a validated config.
func (c *Config) NodeTTL() time.Duration {
	s := DefaultNodeTTL
	if c.Server != nil && c.Server.NodeTTL != "" {
		s = c.Server.NodeTTL
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		d, _ = time.ParseDuration(DefaultNodeTTL)
	}
	return d
}

// validateNodeTTL checks the server block's node_ttl.
func (c *Config) validateNodeTTL(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if c.Server == nil || c.Server.NodeTTL == "" {
		return
	}
	decl := c.Server.DeclRange
	if d, err := time.ParseDuration(c.Server.NodeTTL); err != nil || d < minNodeTTL {
		bad("server.node_ttl", "Invalid node TTL",
			fmt.Sprintf("%q: give how long the leader waits for a node's heartbeat before it marks the node down, at least \"1s\", such as %q.",
				c.Server.NodeTTL, DefaultNodeTTL), &decl)
	}
}

// validateClient checks the client block on its own; CheckClient checks
// it against the rest once flags are applied.
func (c *Config) validateClient(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if c.Client == nil {
		return
	}
	cl := c.Client
	decl := cl.DeclRange
	if cl.Advertise != "" {
		if _, _, err := net.SplitHostPort(cl.Advertise); err != nil {
			bad("client.advertise", "Invalid address",
				fmt.Sprintf("%q is not HOST:PORT, the address the servers reach this node's API at, such as \"10.0.1.11:4747\": %v.", cl.Advertise, err), &decl)
		}
	}
	for _, addr := range cl.Servers {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("client.servers", "Invalid server address",
				fmt.Sprintf("%q is not HOST:PORT, the API address of a server agent such as \"10.0.0.1:4747\": %v.", addr, err), &decl)
		}
	}
	if strings.Contains(cl.NodeClass, "=") {
		bad("client.node_class", "Invalid node class",
			fmt.Sprintf("%q holds \"=\", which run constraints cannot match: give a word such as \"gpu\".", cl.NodeClass), &decl)
	}
	for _, k := range slices.Sorted(maps.Keys(cl.Meta)) {
		switch {
		case k == "":
			bad("client.meta", "Invalid meta key", "a meta key is empty: give each label a name, such as rack = \"r1\".", &decl)
		case k == NodeClassLabel:
			bad("client.meta", "Reserved meta key",
				"\"node_class\" is the label of the client block's node_class: set node_class instead, or name the label otherwise.", &decl)
		case strings.ContainsAny(k, " \t\n=!"):
			bad("client.meta", "Invalid meta key",
				fmt.Sprintf("%q holds a space, \"=\" or \"!\", which run constraints (KEY = VALUE) cannot name: use letters, digits, '_', '.' or '-'.", k), &decl)
		}
		if strings.Contains(cl.Meta[k], "=") {
			bad("client.meta", "Invalid meta value",
				fmt.Sprintf("meta %q: %q holds \"=\", which run constraints cannot match.", k, cl.Meta[k]), &decl)
		}
	}
}

// CheckClient refuses a client that cannot work, once flags are applied:
// a client-only agent needs the servers' addresses and the certificates
// of the mutual TLS they demand, and client settings that would be
// ignored are refused rather than ignored. Every problem is reported at
// once, at the line that set it when a file did.
func (c *Config) CheckClient(dev bool) error {
	var diags hcl.Diagnostics
	bad := func(key, summary, detail string) {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
		r, ok := c.ranges[key]
		if !ok && c.Client != nil {
			r = c.Client.DeclRange
		}
		if r.Filename != "" {
			d.Subject = &r
		}
		diags = append(diags, d)
	}
	servers := c.ClientServers()
	switch {
	case c.ClientEnabled() && dev:
		bad("client.enabled", "Client in dev mode",
			"a dev agent is a cluster of its own that runs its own workloads: drop -client (client { enabled = true }), or drop -dev and give the servers with -servers.")
	case len(servers) > 0 && c.ServerEnabled():
		bad("client.servers", "Servers on a server",
			"a server places its own workloads: remove client.servers (flag -servers), and give the other servers in server { retry_join } instead.")
	case len(servers) > 0 && !c.ClientEnabled():
		bad("client.servers", "Client not enabled",
			"servers are given but the agent is not a client of them: set enabled = true in the client block, or pass -client.")
	case c.ClientOnly():
		if len(servers) == 0 {
			bad("client.enabled", "Missing servers",
				"a client agent registers with the cluster's servers and takes its runs from them: give their API addresses in client { servers = [\"HOST:PORT\", ...] } or with -servers HOST:PORT,HOST:PORT.")
		}
		if host, _, err := net.SplitHostPort(c.Bind); err == nil && c.Client.Advertise == "" {
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				bad("client.enabled", "Missing advertise",
					fmt.Sprintf("the agent binds %s, which the servers cannot dial back for its runs' logs: set client { advertise = \"HOST:PORT\" } to the address they reach this node at, or bind a specific IP.", c.Bind))
			}
		}
		if t := c.TLS; t == nil || t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" || !t.VerifyIncoming {
			bad("client.enabled", "Missing TLS",
				"the servers demand mutual TLS, and call the client back, with their own certificates, for its runs' logs: add a tls block with cert_file, key_file, ca_file "+
					"and verify_incoming = true (`hush tls ca create`, then `hush tls cert create -server` for this node's certificate).")
		}
	}
	if diags.HasErrors() {
		return errors.New(FormatDiagnostics(diags))
	}
	return nil
}
