package api

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// NodeCapacity is what a node's runs may hold, and what of it is free:
// runs that ask for more than is free wait PENDING, in submit order.
type NodeCapacity struct {
	// GPUs are the node's GPUs: devices of GPU kinds in its CDI specs,
	// and device nodes its agent lists.
	GPUs     int `json:"gpus"`
	GPUsFree int `json:"gpus_free"`
	// CPUs and MemoryBytes are what runs may ask for in total: the host's,
	// or less when the agent's node_cpus and node_memory say so.
	CPUs            float64 `json:"cpus"`
	CPUsFree        float64 `json:"cpus_free"`
	MemoryBytes     int64   `json:"memory_bytes"`
	MemoryFreeBytes int64   `json:"memory_free_bytes"`
	// ActiveRuns counts the runs that have not ended, WaitingRuns those of
	// them that wait for room.
	ActiveRuns  int `json:"active_runs"`
	WaitingRuns int `json:"waiting_runs"`
}

// FormatMemory renders a number of bytes for people, in the units run
// specs use, to one decimal rounded down, so that it never says more
// than there is: "28GiB", "1.5GiB", "512MiB".
func FormatMemory(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return strconv.FormatFloat(math.Floor(v*10)/10, 'f', -1, 64) + units[i]
}

// NodeStatus is whether a node of a cluster heartbeats.
type NodeStatus string

const (
	// NodeReady is a node that heartbeats within the servers' node_ttl.
	NodeReady NodeStatus = "ready"
	// NodeDown is a node that missed its heartbeats past node_ttl: its
	// runs are LOST, or placed again when they have retries left.
	NodeDown NodeStatus = "down"
)

// Node is one node of a cluster: an agent that runs workloads, as
// GET /v1/nodes lists it.
type Node struct {
	// ID is the node's id, made by its agent on its first start and kept
	// in its data dir.
	ID string `json:"id"`
	// Name is the agent's node_name.
	Name string `json:"name"`
	// Cluster is the cluster's name; the CLI fills it in when it lists
	// several clusters' nodes.
	Cluster string `json:"cluster,omitempty"`
	// Address is the URL the servers reach the node's agent at.
	Address string `json:"address"`
	// Server is set on a server agent that also runs workloads.
	Server bool       `json:"server,omitempty"`
	Status NodeStatus `json:"status"`
	// Drain is set by `hush node drain`: the node takes no new runs.
	Drain   bool   `json:"drain,omitempty"`
	Runtime string `json:"runtime"`
	// Class is the client block's node_class, which run constraints
	// match as the label "node_class".
	Class string `json:"node_class,omitempty"`
	// Meta are the client block's meta labels, which run constraints
	// match by key.
	Meta map[string]string `json:"meta,omitempty"`
	// Capacity is the node's, less what the runs placed on it ask for.
	Capacity NodeCapacity `json:"capacity"`
	// Version is the node agent's hush version.
	Version string `json:"version,omitempty"`
	// LastSeen is when the node last heartbeat, as the leader saw it.
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// ListNodesResponse is the answer to GET /v1/nodes.
type ListNodesResponse struct {
	Nodes []*Node `json:"nodes"`
}

// DrainNodeRequest is the body of POST /v1/nodes/{node}/drain.
type DrainNodeRequest struct {
	// Enable starts draining; false ends it, and the node takes runs
	// again.
	Enable bool `json:"enable"`
	// Stop also stops the runs placed on the node.
	Stop bool `json:"stop,omitempty"`
}
