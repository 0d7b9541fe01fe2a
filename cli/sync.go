package cli

import (
	"context"
	"errors"
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

// stepKind is what a step of a plan does on one cluster.
type stepKind int

const (
	stepCreate stepKind = iota
	stepDelete
	stepReplace
)

func (k stepKind) symbol() string { return [...]string{"+", "-", "~"}[k] }

// step is one change to one cluster.
type step struct {
	Kind    stepKind
	Cluster string
	Name    string
	// ID is the id deleted (stepDelete) or created (stepCreate, stepReplace).
	ID string
	// OldID is the id a replace deletes.
	OldID string
	// From is the cluster a sync copies the secret from; Request is what
	// an apply creates instead.
	From    string
	Request *api.CreateSecretRequest
	Why     string
}

// syncPlan is what sync would do.
type syncPlan struct {
	Steps []step
	// Conflicts describe names held with different ids that --prefer did
	// not settle.
	Conflicts []string
}

// planSync works out how to bring the replicas in step: a deleted id is
// deleted everywhere, a live id is copied where it is missing, and a name
// held with several live ids is a conflict unless prefer settles it.
func planSync(replicas []*replica, prefer string) *syncPlan {
	plan := &syncPlan{}
	for _, c := range collate(replicas) {
		for id, holders := range c.Holders {
			if len(c.Dead[id]) == 0 {
				continue
			}
			for _, cl := range holders {
				plan.Steps = append(plan.Steps, step{Kind: stepDelete, Cluster: cl, Name: c.Name, ID: id,
					Why: "deleted on " + strings.Join(c.Dead[id], ", ")})
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
				plan.Conflicts = append(plan.Conflicts, fmt.Sprintf("secret %s is held with different ids: %s%s",
					c.Name, c.describeHolders(live), why))
				continue
			}
			for _, id := range live {
				if id == keep {
					continue
				}
				for _, cl := range c.Holders[id] {
					plan.Steps = append(plan.Steps, step{Kind: stepDelete, Cluster: cl, Name: c.Name, ID: id, Why: why})
				}
			}
		}
		for _, r := range replicas {
			if !slices.Contains(c.Holders[keep], r.Cluster) {
				plan.Steps = append(plan.Steps, step{Kind: stepCreate, Cluster: r.Cluster, Name: c.Name, ID: keep,
					From: c.Holders[keep][0], Why: "copied from " + c.Holders[keep][0]})
			}
		}
	}
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
func syncSecrets(ctx context.Context, f *fleet, opts *syncOptions) error {
	ui := opts.UI
	replicas, failed := fetchReplicas(ctx, f)
	for _, r := range failed {
		ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
	}
	if len(replicas) == 0 {
		return errReported
	}
	plan := planSync(replicas, opts.Prefer)
	if len(plan.Steps) > 0 {
		printSteps(ui, clusterNames(replicas), plan.Steps)
	}
	for _, c := range plan.Conflicts {
		ui.Fail("%s", c)
	}
	if len(plan.Conflicts) > 0 {
		ui.Hint("Keep one with `hush sync secrets --prefer newest`, or `--prefer CLUSTER` to keep that cluster's copy.")
	}
	switch {
	case opts.DryRun:
		ui.Info("Dry run: nothing was changed (%d change(s) planned)", len(plan.Steps))
	case len(plan.Steps) == 0 && len(plan.Conflicts) == 0 && len(failed) == 0 && len(replicas) == 1:
		ui.Success("There is one cluster, so it is in sync; add more with `hush cluster add`")
	case len(plan.Steps) == 0 && len(plan.Conflicts) == 0 && len(failed) == 0:
		ui.Success("All %d clusters are in sync", len(replicas))
	case len(plan.Steps) > 0:
		if err := carryOut(ctx, f, plan.Steps, ui); err != nil {
			ui.Hint("Run `hush sync secrets` again when the failed clusters answer.")
			return err
		}
		ui.Success("Applied %d change(s); the clusters hold the same secrets", len(plan.Steps))
	}
	if len(failed) > 0 {
		ui.Warn("%d of %d clusters did not answer and were not synced; run `hush sync secrets` again when they do",
			len(failed), len(f.Clusters))
		return errReported
	}
	if len(plan.Conflicts) > 0 && !opts.DryRun {
		return errReported
	}
	return nil
}

// printSteps lists a plan's steps cluster by cluster, saying so for the
// clusters it leaves as they are.
func printSteps(ui *UI, clusters []string, steps []step) {
	for _, cl := range clusters {
		var lines []string
		for _, s := range steps {
			if s.Cluster != cl {
				continue
			}
			id := s.ID
			if s.Kind == stepReplace {
				id = s.OldID + " -> " + s.ID
			}
			line := fmt.Sprintf("    %s %s (%s)", s.Kind.symbol(), s.Name, id)
			if s.Why != "" {
				line += ": " + s.Why
			}
			lines = append(lines, line)
		}
		if len(lines) == 0 {
			fmt.Fprintf(ui.out, "  cluster %s: no changes\n", cl)
			continue
		}
		fmt.Fprintf(ui.out, "  cluster %s:\n%s\n", cl, strings.Join(lines, "\n"))
	}
}

// clusterNames returns the names of the replicas' clusters.
func clusterNames(replicas []*replica) []string {
	names := make([]string, len(replicas))
	for i, r := range replicas {
		names[i] = r.Cluster
	}
	return names
}

// carryOut applies steps on every cluster at once: on each cluster its
// deletes first, so a replaced or conflicting secret makes room, then its
// creates. Values of copied secrets are read from the cluster they come
// from and go only to the agents that get them.
func carryOut(ctx context.Context, f *fleet, steps []step, ui *UI) error {
	var targets []*cluster
	for _, c := range f.Clusters {
		if slices.ContainsFunc(steps, func(s step) bool { return s.Cluster == c.Name }) {
			targets = append(targets, c)
		}
	}
	results := fanOut(ctx, f, targets, func(ctx context.Context, c *cluster) (int, error) {
		done := 0
		mine := slices.DeleteFunc(slices.Clone(steps), func(s step) bool { return s.Cluster != c.Name })
		slices.SortStableFunc(mine, func(a, b step) int { return int(b.Kind) - int(a.Kind) })
		for _, s := range mine {
			if err := s.apply(ctx, f, c); err != nil {
				return done, err
			}
			done++
		}
		return done, nil
	})
	applied, failed := 0, 0
	for _, r := range results {
		applied += r.Value
		if r.Err != nil {
			failed++
			ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
		}
	}
	if failed > 0 {
		ui.Warn("Applied %d of %d change(s); %d of %d clusters failed", applied, len(steps), failed, len(results))
		return errReported
	}
	return nil
}

// apply carries out one sync step on cluster c.
func (s step) apply(ctx context.Context, f *fleet, c *cluster) error {
	switch s.Kind {
	case stepDelete:
		err := c.Client.DeleteSecretID(ctx, s.Name, s.ID)
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			return fmt.Errorf("delete secret %s: %w", s.Name, err)
		}
		return nil
	case stepReplace:
		err := c.Client.DeleteSecretID(ctx, s.Name, s.OldID)
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			return fmt.Errorf("replace secret %s: %w", s.Name, err)
		}
		fallthrough
	default:
		if s.Request != nil {
			if _, err := c.Client.CreateSecret(ctx, s.Request); err != nil {
				return fmt.Errorf("create secret %s: %w", s.Name, err)
			}
			return nil
		}
		from, err := f.Lookup(s.From)
		if err != nil {
			return err
		}
		exp, err := from.Client.ExportSecret(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("export secret %s from %s: %w", s.Name, s.From, err)
		}
		if exp.ID != s.ID {
			return fmt.Errorf("secret %s changed on %s while syncing: run `hush sync secrets` again", s.Name, s.From)
		}
		if _, err := c.Client.CreateSecret(ctx, exp); err != nil {
			return fmt.Errorf("copy secret %s from %s: %w", s.Name, s.From, err)
		}
		return nil
	}
}
