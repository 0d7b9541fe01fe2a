package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

// runClusterFlag chooses the cluster of a run command.
func runClusterFlag() cli.Flag { return clusterFlag("whichever cluster holds the run") }

// findRun finds a run by name or id on the named cluster, or else on
// whichever cluster holds it.
func findRun(ctx context.Context, ui *UI, cl string, ref string) (*fleet.Cluster, *api.Run, error) {
	f, err := ui.loadFleet()
	if err != nil {
		return nil, nil, err
	}
	clusters, err := f.Narrow(cl)
	if err != nil {
		return nil, nil, err
	}
	results := fleet.FanOut(ctx, f, clusters, func(ctx context.Context, c *fleet.Cluster) (*api.Run, error) {
		return c.Client.GetRun(ctx, ref)
	})
	if len(results) == 1 {
		return results[0].Cluster, results[0].Value, results[0].Err
	}
	var found []fleet.Result[*api.Run]
	var errs []string
	for _, r := range results {
		switch {
		case r.Err == nil:
			found = append(found, r)
		case !errors.Is(r.Err, api.ErrNotFound):
			errs = append(errs, fmt.Sprintf("%s (%v)", r.Cluster.Name, r.Err))
		}
	}
	switch len(found) {
	case 1:
		return found[0].Cluster, found[0].Value, nil
	case 0:
		msg := fmt.Sprintf("no run named %s on any cluster; `hush get runs` lists your runs", ref)
		if len(errs) > 0 {
			msg += "; these clusters did not answer: " + strings.Join(errs, ", ")
		}
		return nil, nil, errors.New(msg)
	}
	names := make([]string, len(found))
	for i, r := range found {
		names[i] = r.Cluster.Name
	}
	return nil, nil, fmt.Errorf("run %s is on several clusters (%s): choose one with --cluster, or give the run's id", ref, strings.Join(names, ", "))
}

// runsAction applies do to the named runs, or with --all to every run that
// all selects, on every cluster (or the one --cluster names), after
// checking that every name exists and names one run.
func runsAction(c *cli.Context, ui *UI, verb string, all func(*api.Run) bool,
	do func(context.Context, *api.Client, string) error) error {
	names, doAll := c.Args().Slice(), c.Bool("all")
	switch {
	case doAll && len(names) > 0:
		return usageErrorf(c, "give run names or --all, not both")
	case !doAll && len(names) == 0:
		return usageErrorf(c, "give the names of the runs to %s, or --all", verb)
	}
	f, err := ui.loadFleet()
	if err != nil {
		return err
	}
	clusters, err := f.Narrow(c.String("cluster"))
	if err != nil {
		return err
	}
	ctx := c.Context
	listed := fleet.FanOut(ctx, f, clusters, func(ctx context.Context, c *fleet.Cluster) ([]*api.Run, error) {
		return c.Client.ListRuns(ctx)
	})
	if err := answered(ui, listed); err != nil {
		return err
	}
	var targets []runTarget
	if doAll {
		for _, r := range listed {
			for _, run := range r.Value {
				if all(run) {
					targets = append(targets, runTarget{r.Cluster, run.Name})
				}
			}
		}
	} else if targets, err = namedRuns(listed, names); err != nil {
		return err
	}
	labels := make([]string, len(targets))
	byLabel := map[string]runTarget{}
	for i, t := range targets {
		labels[i] = t.ref
		if len(clusters) > 1 {
			labels[i] += " (" + t.cluster.Name + ")"
		}
		byLabel[labels[i]] = t
	}
	return applyEach(ui, c.Bool("yes"), labels, action{noun: "run", verb: verb, done: pastTense(verb), nothing: "Nothing done"},
		func(label string) error { return do(ctx, byLabel[label].cluster.Client, byLabel[label].ref) })
}

// runTarget is a run, by name or id, on a cluster.
type runTarget struct {
	cluster *fleet.Cluster
	ref     string
}

// namedRuns finds each named run on the clusters that listed theirs. A
// name must name one run: one held by several clusters needs --cluster.
func namedRuns(listed []fleet.Result[[]*api.Run], names []string) ([]runTarget, error) {
	var targets []runTarget
	var missing, ambiguous []string
	for _, n := range names {
		var on []*fleet.Cluster
		for _, r := range listed {
			if slices.ContainsFunc(r.Value, func(run *api.Run) bool { return run.Name == n || run.ID == n }) {
				on = append(on, r.Cluster)
			}
		}
		switch len(on) {
		case 0:
			missing = append(missing, n)
		case 1:
			targets = append(targets, runTarget{on[0], n})
		default:
			where := make([]string, len(on))
			for i, c := range on {
				where[i] = c.Name
			}
			ambiguous = append(ambiguous, fmt.Sprintf("%s (on %s)", n, strings.Join(where, ", ")))
		}
	}
	switch {
	case len(missing) > 0:
		return nil, fmt.Errorf("no run named %s: nothing was done; `hush get runs` lists your runs", strings.Join(missing, ", "))
	case len(ambiguous) > 0:
		return nil, fmt.Errorf("more than one run is named %s: nothing was done; choose the cluster with --cluster, or give the run's id",
			strings.Join(ambiguous, ", "))
	}
	return targets, nil
}

func pastTense(verb string) string {
	if verb == "stop" {
		return "Stopping"
	}
	return "Deleted"
}
