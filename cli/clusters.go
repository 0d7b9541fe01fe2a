package cli

import (
	"sync"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

// EnvConfig names the CLI's config file instead of ~/.hush/config.yaml.
const EnvConfig = fleet.EnvConfig

// fleetLoader loads the clusters once, on first use, for the commands that
// need them.
type fleetLoader struct {
	once  sync.Once
	fleet *fleet.Fleet
	err   error
}

// loadFleet returns the clusters commands work on (see fleet.Load), read
// from the environment Run was given the first time it is called.
func (u *UI) loadFleet() (*fleet.Fleet, error) {
	u.fleets.once.Do(func() { u.fleets.fleet, u.fleets.err = fleet.Load(u.env) })
	return u.fleets.fleet, u.fleets.err
}

// clusterFlag chooses the one cluster a command works on; usage says what
// happens without it.
func clusterFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "cluster", Usage: "the `CLUSTER` to work on (default: " + usage + ")"}
}

// targetClient loads the clusters and returns the client of the one that
// the command's --cluster flag names, or the default.
func targetClient(c *cli.Context, ui *UI) (*api.Client, error) {
	f, err := ui.loadFleet()
	if err != nil {
		return nil, err
	}
	return f.Target(c.String("cluster"))
}

// commandClient refuses arguments to a command that takes none, and
// returns the client of the cluster it targets.
func commandClient(c *cli.Context, ui *UI) (*api.Client, error) {
	if c.NArg() > 0 {
		return nil, usageErrorf(c, "`%s` takes no arguments; got %q", c.Command.HelpName, c.Args().First())
	}
	return targetClient(c, ui)
}

// listClient is commandClient for a listing: it also checks --output,
// which it returns.
func listClient(c *cli.Context, ui *UI) (*api.Client, string, error) {
	if c.NArg() > 0 {
		return nil, "", usageErrorf(c, "`%s` takes no arguments; got %q", c.Command.HelpName, c.Args().First())
	}
	output := c.String("output")
	if err := checkOutput(c, output); err != nil {
		return nil, "", err
	}
	client, err := targetClient(c, ui)
	return client, output, err
}

// answered prints the failure of each cluster that did not answer, and
// returns an error when none did: a listing from no cluster is not empty,
// it is unknown. With one cluster its error is returned as it is.
func answered[T any](ui *UI, results []fleet.Result[T]) error {
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(results) == 1:
		return results[0].Named()
	}
	for _, r := range results {
		if r.Err != nil {
			ui.Warn("cluster %s: %v", r.Cluster.Name, r.Err)
		}
	}
	if failed == len(results) {
		ui.Fail("No cluster answered")
		return errReported
	}
	return nil
}

// syncRepairs is how a write that some clusters missed is finished.
const syncRepairs = "run `hush sync secrets` to repair"

// reportFanOut says how a write to every cluster went. When every cluster
// took it: "Synced to all clusters". Otherwise one failure line per cluster,
// a summary with repair, how to finish, when some took it, and errReported
// for exit code 1. A single cluster that failed gives its error as it is.
func reportFanOut[T any](ui *UI, results []fleet.Result[T], repair string) error {
	var failed []fleet.Result[T]
	for _, r := range results {
		if r.Err != nil {
			failed = append(failed, r)
		}
	}
	switch {
	case len(failed) == 0:
		ui.Success("Synced to all clusters")
		return nil
	case len(results) == 1:
		return failed[0].Named()
	}
	for _, r := range failed {
		ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
	}
	if len(failed) == len(results) {
		ui.Warn("No cluster took the change")
	} else {
		ui.Warn("Synced to %d of %d clusters; %s", len(results)-len(failed), len(results), repair)
	}
	return errReported
}
