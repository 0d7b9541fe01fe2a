package cli

import (
	"context"
	"strconv"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

func getNodesCommand(ui *UI) *cli.Command {
	return fleetGetCommand(ui, "nodes", "node",
		"list the nodes of every cluster with their GPUs, CPUs and memory (free/total) and active runs", getNodes)
}

// node is a node as `get nodes` shows it.
type node struct {
	Name     string            `json:"name" yaml:"name"`
	Cluster  string            `json:"cluster" yaml:"cluster"`
	Runtime  string            `json:"runtime" yaml:"runtime"`
	Capacity *api.NodeCapacity `json:"capacity,omitempty" yaml:"capacity,omitempty"`
}

// getNodes asks every cluster's agent for its node's capacity. Clusters
// that do not answer are warned about, as `get runs` does.
func getNodes(ctx context.Context, f *fleet.Fleet, output string, ui *UI) error {
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) (*api.AgentSelf, error) {
		return c.Client.Self(ctx)
	})
	if err := answered(ui, results); err != nil {
		return err
	}
	var nodes []*node
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		cluster := r.Cluster.Name
		if f.Direct {
			cluster = r.Value.Cluster // the agent's own name: there is no config's
		}
		nodes = append(nodes, &node{Name: r.Value.Node, Cluster: cluster, Runtime: r.Value.Runtime, Capacity: r.Value.Capacity})
	}
	return listing[*node]{
		empty:  "No cluster answered.",
		header: []string{"NAME", "CLUSTER", "RUNTIME", "GPUS", "CPUS", "MEMORY", "RUNS"},
		name:   func(n *node) string { return n.Name },
		row: func(n *node) []string {
			c := n.Capacity
			if c == nil { // an agent from before capacity was reported
				return []string{n.Name, n.Cluster, n.Runtime, "-", "-", "-", "-"}
			}
			cpus := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
			runs := strconv.Itoa(c.ActiveRuns)
			if c.WaitingRuns > 0 {
				runs += " (" + strconv.Itoa(c.WaitingRuns) + " waiting)"
			}
			return []string{n.Name, n.Cluster, n.Runtime,
				strconv.Itoa(c.GPUsFree) + "/" + strconv.Itoa(c.GPUs),
				cpus(c.CPUsFree) + "/" + cpus(c.CPUs),
				api.FormatMemory(c.MemoryFreeBytes) + "/" + api.FormatMemory(c.MemoryBytes),
				runs}
		},
	}.print(ui, output, nodes)
}
