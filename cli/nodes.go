package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

func getNodesCommand(ui *UI) *cli.Command {
	return fleetGetCommand(ui, "nodes", "node",
		"list the nodes of every cluster: status, GPUs, CPUs and memory (free/total), and active runs", getNodes)
}

// clusterNodes is one cluster's answer to `get nodes`.
type clusterNodes struct {
	nodes []*api.Node
	// self is set when the agent is older than GET /v1/nodes: the nodes
	// are then its own, from /v1/agent/self.
	self bool
	// noCapacity holds the nodes whose agent reports no capacity at all.
	noCapacity map[*api.Node]bool
}

// getNodes lists the nodes of every cluster. Clusters that do not answer
// are warned about, as `get runs` does; a cluster whose agent predates the
// node list shows that agent's own node, with a note.
func getNodes(ctx context.Context, f *fleet.Fleet, output string, ui *UI) error {
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) (*clusterNodes, error) {
		return listClusterNodes(ctx, c, f.Direct)
	})
	if err := answered(ui, results); err != nil {
		return err
	}
	var nodes []*api.Node
	noCapacity := map[*api.Node]bool{}
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		if r.Value.self {
			ui.Warn("cluster %s: its agent is older than the node list (GET /v1/nodes), so only that agent's own node is shown; upgrade it to see every node",
				r.Cluster.Name)
		}
		nodes = append(nodes, r.Value.nodes...)
		for n := range r.Value.noCapacity {
			noCapacity[n] = true
		}
	}
	return listing[*api.Node]{
		empty:  "No nodes: no agent of these clusters runs workloads.",
		header: []string{"NAME", "CLUSTER", "STATUS", "GPUS", "CPUS", "MEMORY", "RUNS"},
		name:   func(n *api.Node) string { return n.Name },
		row: func(n *api.Node) []string {
			if noCapacity[n] { // an agent from before capacity was reported
				return []string{n.Name, n.Cluster, nodeStatus(n), "-", "-", "-", "-"}
			}
			c := n.Capacity
			cpus := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
			runs := strconv.Itoa(c.ActiveRuns)
			if c.WaitingRuns > 0 {
				runs += " (" + strconv.Itoa(c.WaitingRuns) + " waiting)"
			}
			return []string{n.Name, n.Cluster, nodeStatus(n),
				strconv.Itoa(c.GPUsFree) + "/" + strconv.Itoa(c.GPUs),
				cpus(c.CPUsFree) + "/" + cpus(c.CPUs),
				api.FormatMemory(c.MemoryFreeBytes) + "/" + api.FormatMemory(c.MemoryBytes),
				runs}
		},
	}.print(ui, output, nodes)
}

// listClusterNodes asks one cluster for its nodes, sorted by name, each
// named with the cluster's name as the CLI's config knows it.
func listClusterNodes(ctx context.Context, c *fleet.Cluster, direct bool) (*clusterNodes, error) {
	nodes, err := c.Client.ListNodes(ctx)
	if errors.Is(err, api.ErrNotFound) {
		return selfNode(ctx, c, direct)
	}
	if err != nil {
		return nil, err
	}
	name := c.Name
	if direct {
		// There is no config's name: use the agent's own, as other
		// listings do.
		if self, err := c.Client.Self(ctx); err == nil {
			name = self.Cluster
		}
	}
	for _, n := range nodes {
		n.Cluster = name
	}
	slices.SortFunc(nodes, func(a, b *api.Node) int { return cmp.Compare(a.Name, b.Name) })
	return &clusterNodes{nodes: nodes}, nil
}

// selfNode is the node of an agent older than GET /v1/nodes: a one-node
// cluster, which describes its node on /v1/agent/self.
func selfNode(ctx context.Context, c *fleet.Cluster, direct bool) (*clusterNodes, error) {
	self, err := c.Client.Self(ctx)
	if err != nil {
		return nil, err
	}
	n := &api.Node{Name: self.Node, Cluster: c.Name, Status: api.NodeReady, Runtime: self.Runtime, Version: self.Version}
	if direct {
		n.Cluster = self.Cluster
	}
	out := &clusterNodes{nodes: []*api.Node{n}, self: true}
	if self.Capacity != nil {
		n.Capacity = *self.Capacity
	} else {
		out.noCapacity = map[*api.Node]bool{n: true}
	}
	return out, nil
}

// nodeStatus renders the STATUS column: "ready", "down", or either with
// ", draining".
func nodeStatus(n *api.Node) string {
	s := string(n.Status)
	if n.Drain {
		s += ", draining"
	}
	return s
}

func nodeCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "node",
		Usage: "look after the nodes of a cluster (needs a management token)",
		Subcommands: []*cli.Command{{
			Name:  "drain",
			Usage: "stop placing new runs on a node, and with --stop stop the runs on it too",
			Description: "A draining node keeps its runs unless --stop is given; stopped runs that have retries left\n" +
				"are placed again on other nodes. --disable ends draining: the node takes runs again.",
			ArgsUsage: "NODE",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "stop", Usage: "also stop the node's active runs"},
				&cli.BoolFlag{Name: "disable", Usage: "end draining: the node takes runs again"},
				clusterFlag("the default cluster"),
			},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one node name or id (see `hush get nodes`)"); err != nil {
					return err
				}
				opts := &drainOptions{Node: c.Args().First(), Stop: c.Bool("stop"), Disable: c.Bool("disable"), UI: ui}
				if opts.Stop && opts.Disable {
					return usageErrorf(c, "--stop and --disable do not go together: --disable ends draining, --stop stops the node's runs")
				}
				client, err := targetClient(c, ui)
				if err != nil {
					return err
				}
				return drainNode(c.Context, client, opts)
			},
		}},
	}
}

// drainOptions are the options of `hush node drain`.
type drainOptions struct {
	Node          string
	Stop, Disable bool
	UI            *UI
}

// drainNode starts or ends draining a node and says what became of it.
func drainNode(ctx context.Context, client *api.Client, opts *drainOptions) error {
	n, err := client.DrainNode(ctx, opts.Node, api.DrainNodeRequest{Enable: !opts.Disable, Stop: opts.Stop})
	if err != nil {
		return fmt.Errorf("drain node %s: %w", opts.Node, err)
	}
	name := cmp.Or(n.Name, opts.Node)
	switch {
	case opts.Disable:
		opts.UI.Success("Node %s takes runs again", name)
	case opts.Stop:
		opts.UI.Success("Node %s is draining: it takes no new runs and %s", name, stopping(n.Capacity.ActiveRuns))
	default:
		opts.UI.Success("Node %s is draining: it takes no new runs", name)
	}
	return nil
}

// stopping says how many runs a drain with --stop is stopping.
func stopping(n int) string {
	switch n {
	case 0:
		return "it has no runs to stop"
	case 1:
		return "its 1 run is being stopped"
	}
	return "its " + strconv.Itoa(n) + " runs are being stopped"
}
