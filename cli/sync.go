package cli

import (
	"context"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

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
				f, err := ui.loadFleet()
				if err != nil {
					return err
				}
				prefer := c.String("prefer")
				if prefer != "" && prefer != fleet.PreferNewest {
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

// syncSecrets compares every cluster, prints the plan, and carries it out.
// It exits 1 while anything stays out of step: a cluster that did not
// answer, a conflict, or a change that failed; a dry run too.
func syncSecrets(ctx context.Context, f *fleet.Fleet, opts *syncOptions) error {
	ui := opts.UI
	replicas, failed, err := fetchReplicas(ctx, f, ui)
	if err != nil {
		return err
	}
	plan := fleet.PlanSync(replicas, opts.Prefer)
	if len(plan.Steps) > 0 {
		printSteps(ui, fleet.ClusterNames(replicas), plan.Steps)
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
