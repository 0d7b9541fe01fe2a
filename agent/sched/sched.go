// Package sched places runs on the nodes of a cluster: it filters the nodes a
// run can go to (status, runtime, label constraints, free GPUs, CPUs and
// memory) and bin-packs GPUs first among them, so that large GPU runs still
// find whole nodes after many small ones have been placed.
//
// The package is pure: it sees a snapshot of the nodes and a request, and
// returns a node ID or an *Unplaceable that says why, in words a person can act
// on. The caller (the leader) records the placement and updates free capacity.
package sched

import (
	"errors"
	"fmt"
)

// NodeStatus is whether a node is heartbeating.
type NodeStatus string

const (
	// StatusReady is a node that heartbeats within its TTL.
	StatusReady NodeStatus = "ready"
	// StatusDown is a node that missed its heartbeats; it may come back.
	StatusDown NodeStatus = "down"
)

// Node is what the scheduler knows of one client node. Capacities are the
// node's totals; the Free* fields are what runs placed on it leave.
type Node struct {
	// ID identifies the node; Place returns it.
	ID string
	// Name is the node's name, used in messages and to break ties.
	Name string
	// Runtime is the workload runtime the node runs, e.g. "containerd".
	Runtime string
	// Status is ready or down; only ready nodes take runs. The zero value
	// is neither, so a node whose status was never set takes nothing.
	Status NodeStatus
	// Draining is set by `hush node drain`: the node takes no new runs.
	Draining bool

	// GPUs and FreeGPUs count whole GPUs.
	GPUs, FreeGPUs int
	// CPUMillis and FreeCPUMillis count thousandths of a CPU, so that
	// sums and comparisons are exact.
	CPUMillis, FreeCPUMillis int64
	// MemoryBytes and FreeMemoryBytes count bytes of memory.
	MemoryBytes, FreeMemoryBytes int64

	// Labels are matched by a request's constraints.
	Labels map[string]string
}

// Constraint restricts a run to nodes whose label Key compares to Value with
// Op, "=" or "!=". A node without the label fails "=" and passes "!=".
type Constraint struct {
	Key, Op, Value string
}

// String renders the constraint as a person writes it: "gpu_type = a100".
func (c Constraint) String() string { return c.Key + " " + c.Op + " " + c.Value }

func (c Constraint) matches(labels map[string]string) bool {
	v, ok := labels[c.Key]
	if c.Op == "!=" {
		return !ok || v != c.Value
	}
	return ok && v == c.Value
}

// Request is what a run needs of the node it goes to.
type Request struct {
	// Runtime is the runtime the run needs; empty means any.
	Runtime string
	// GPUs is the number of whole GPUs the run needs.
	GPUs int
	// CPUMillis is the CPU the run needs, in thousandths of a CPU.
	CPUMillis int64
	// MemoryBytes is the memory the run needs.
	MemoryBytes int64
	// Constraints must all hold on the node's labels.
	Constraints []Constraint
}

// ErrInvalidRequest is returned, wrapped, by Place and Validate for a
// request that no cluster could ever judge (negative sizes, unknown
// operators); the spec parser should have caught it.
var ErrInvalidRequest = errors.New("invalid request")

// Validate reports every problem of the request at once.
func (r Request) Validate() error {
	var errs []error
	if r.GPUs < 0 {
		errs = append(errs, fmt.Errorf("gpus: %d is negative; ask for 0 or more", r.GPUs))
	}
	if r.CPUMillis < 0 {
		errs = append(errs, fmt.Errorf("cpus: %s is negative; ask for 0 or more", cpus(r.CPUMillis)))
	}
	if r.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("memory: %d bytes is negative; ask for 0 or more", r.MemoryBytes))
	}
	for i, c := range r.Constraints {
		if c.Key == "" {
			errs = append(errs, fmt.Errorf("constraints[%d]: the label key is empty", i))
		}
		if c.Op != "=" && c.Op != "!=" {
			errs = append(errs, fmt.Errorf("constraints[%d]: operator %q is not supported; use = or !=", i, c.Op))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, errors.Join(errs...))
	}
	return nil
}

// Place picks the node for req among nodes and returns its ID. It does not
// change nodes: the caller subtracts the request from the chosen node's free
// capacity once the placement is committed.
//
// Among the nodes that can take the run now, it picks the best fit for GPUs:
// the node left with the fewest free GPUs, so that nodes with many free GPUs
// stay whole for the runs that need them. A run with no GPUs goes to a node
// without GPUs if one fits, so it does not take the CPUs and memory a GPU
// run will need. Ties go to the node left with the least free CPU, then
// memory, then to the smaller name and ID, so the choice is deterministic.
//
// When no node fits, the error is an *Unplaceable saying why; its Never field
// tells whether no node could take the run even when empty.
func Place(nodes []Node, req Request) (string, error) {
	if err := req.Validate(); err != nil {
		return "", fmt.Errorf("place run: %w", err)
	}
	best := -1
	for i := range nodes {
		if !fitsNow(&nodes[i], &req) {
			continue
		}
		if best < 0 || better(&nodes[i], &nodes[best], &req) {
			best = i
		}
	}
	if best < 0 {
		return "", explain(nodes, req)
	}
	return nodes[best].ID, nil
}

// fitsNow reports whether n can take req now.
func fitsNow(n *Node, req *Request) bool {
	return n.Status == StatusReady && !n.Draining && matches(n, req) &&
		n.FreeGPUs >= req.GPUs && n.FreeCPUMillis >= req.CPUMillis && n.FreeMemoryBytes >= req.MemoryBytes
}

// matches reports whether n runs the request's runtime and passes its
// constraints, whatever its load.
func matches(n *Node, req *Request) bool {
	if req.Runtime != "" && n.Runtime != req.Runtime {
		return false
	}
	for _, c := range req.Constraints {
		if !c.matches(n.Labels) {
			return false
		}
	}
	return true
}

// better reports whether a is a better home for req than b; both fit.
// Subtracting the request is the same for both, so comparing free capacity
// before placement compares what is left after it.
func better(a, b *Node, req *Request) bool {
	if req.GPUs == 0 {
		if ag, bg := a.GPUs > 0, b.GPUs > 0; ag != bg {
			return !ag
		}
	}
	switch {
	case a.FreeGPUs != b.FreeGPUs:
		return a.FreeGPUs < b.FreeGPUs
	case a.FreeCPUMillis != b.FreeCPUMillis:
		return a.FreeCPUMillis < b.FreeCPUMillis
	case a.FreeMemoryBytes != b.FreeMemoryBytes:
		return a.FreeMemoryBytes < b.FreeMemoryBytes
	case a.Name != b.Name:
		return a.Name < b.Name
	}
	return a.ID < b.ID
}
