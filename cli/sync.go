package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

// Ways --prefer settles a name held with different ids.
const preferNewest = "newest"

func syncCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "bring clusters in step",
		Subcommands: []*cli.Command{{
			Name:  "secrets",
			Usage: "copy secrets to the clusters that missed them, and apply the deletes they missed",
			Description: "A delete is never undone: a secret deleted on one cluster is deleted on all.\n" +
				"A name held with different ids on different clusters is a conflict; it is reported,\n" +
				"and settled only with --prefer newest (keep the latest created) or --prefer CLUSTER\n" +
				"(keep that cluster's). Values travel from agent to agent through the CLI and are never printed.",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "dry-run", Usage: "show what would change, and change nothing"},
				&cli.StringFlag{Name: "prefer", Usage: "settle conflicts: `newest`, or the name of the cluster whose copy wins"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageErrorf(c, "`hush sync secrets` takes no arguments; got %q", c.Args().First())
				}
				f, err := loadFleet()
				if err != nil {
					return err
				}
				prefer := c.String("prefer")
				if prefer != "" && prefer != preferNewest {
					if _, err := f.Lookup(prefer); err != nil {
						return usageErrorf(c, "--prefer %s: give newest or a cluster: %v", prefer, err)
					}
				}
				return syncSecrets(c.Context, f, &syncOptions{DryRun: c.Bool("dry-run"), Prefer: prefer, UI: ui})
			},
		}},
	}
}

type syncOptions struct {
	DryRun bool
	Prefer string
	UI     *UI
}

// planSync works out how to bring the replicas in step: a deleted id is
// deleted everywhere, a live id is copied where it is missing, and a name
// held with several live ids is a conflict unless prefer settles it.
func planSync(replicas []*replica, prefer string) *secretPlan {
	plan := &secretPlan{}
	for _, c := range collate(replicas) {
		for id := range c.Holders {
			if len(c.Dead[id]) > 0 {
				plan.Steps = append(plan.Steps, c.deleteSteps(id, "deleted on "+strings.Join(c.Dead[id], ", "))...)
			}
		}
		live := c.live()
		if len(live) == 0 {
			continue
		}
		keep := live[0]
		if len(live) > 1 {
			var why string
			keep, why = settle(c, live, prefer)
			if keep == "" {
				if why == "" {
					why = "; keep one with `--prefer newest`, or `--prefer CLUSTER` to keep that cluster's"
				}
				plan.Conflicts = append(plan.Conflicts, fmt.Sprintf("secret %s is held with different ids: %s%s",
					c.Name, c.describeHolders(live), why))
				continue
			}
			for _, id := range live {
				if id != keep {
					plan.Steps = append(plan.Steps, c.deleteSteps(id, why)...)
				}
			}
		}
		for _, r := range replicas {
			if !slices.Contains(c.Holders[keep], r.Cluster) {
				plan.Steps = append(plan.Steps, step{Kind: stepCreate, Cluster: r.Cluster, Name: c.Name, Type: c.Meta[keep].Type, ID: keep,
					From: c.Holders[keep][0], Why: "copied from " + c.Holders[keep][0]})
			}
		}
	}
	plan.checkUnique(replicas)
	return plan
}

// settle picks the id to keep of a name held with several, as prefer says,
// and why; "" when prefer does not settle it.
func settle(c *copies, live []string, prefer string) (keep, why string) {
	switch prefer {
	case "":
		return "", ""
	case preferNewest:
		keep = live[len(live)-1]
		return keep, fmt.Sprintf("conflict settled for the newest, %s", keep)
	}
	for _, id := range live {
		if slices.Contains(c.Holders[id], prefer) {
			return id, fmt.Sprintf("conflict settled for %s's copy, %s", prefer, id)
		}
	}
	return "", fmt.Sprintf(" (%s holds none of them, so --prefer %s cannot settle it)", prefer, prefer)
}

// syncSecrets compares every cluster, prints the plan, and carries it out.
// It exits 1 while anything stays out of step: a cluster that did not
// answer, a conflict, or a change that failed; a dry run too.
func syncSecrets(ctx context.Context, f *fleet, opts *syncOptions) error {
	ui := opts.UI
	replicas, failed, err := fetchReplicas(ctx, f, ui)
	if err != nil {
		return err
	}
	plan := planSync(replicas, opts.Prefer)
	if len(plan.Steps) > 0 {
		printSteps(ui, clusterNames(replicas), plan.Steps)
	}
	for _, c := range plan.Conflicts {
		ui.Fail("%s", c)
	}
	inStep := len(plan.Conflicts) == 0 && failed == 0
	switch {
	case opts.DryRun:
		ui.Info("Dry run: nothing was changed (%d change(s) planned)", len(plan.Steps))
	case len(plan.Steps) > 0:
		if err := carryOut(ctx, f, plan.Steps, ui); err != nil {
			ui.Hint("Run `hush sync secrets` again once the failures above are fixed.")
			return err
		}
		if inStep {
			ui.Success("Applied %d change(s); the clusters hold the same secrets", len(plan.Steps))
		} else {
			ui.Success("Applied %d change(s)", len(plan.Steps))
		}
	case !inStep:
	case f.Direct:
		ui.Info("%s names one agent, so there is nothing to sync it with; unset %s and %s to sync the clusters of your config",
			api.EnvAddr, api.EnvAddr, api.EnvToken)
	case len(replicas) == 1:
		ui.Success("There is one cluster, so it is in sync; add more with `hush cluster add`")
	default:
		ui.Success("All %d clusters are in sync", len(replicas))
	}
	if failed > 0 {
		ui.Warn("%d of %d clusters did not answer and were not synced; run `hush sync secrets` again when they do",
			failed, len(f.Clusters))
	}
	if !inStep {
		return errReported
	}
	return nil
}

// clusterNames returns the names of the replicas' clusters.
func clusterNames(replicas []*replica) []string {
	names := make([]string, len(replicas))
	for i, r := range replicas {
		names[i] = r.Cluster
	}
	return names
}
