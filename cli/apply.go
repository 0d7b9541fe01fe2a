package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/hush-sh/hush/sdk/spec"
	"github.com/urfave/cli/v2"
)

func applyCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "make every cluster hold the secrets a file declares",
		Description: "The file is HCL (secret \"TYPE\" \"NAME\" { ... } blocks) or YAML (a secrets: list); see\n" +
			"examples/secrets.hcl. Values come from file(\"path\"), env(\"VAR\"), a provider reference\n" +
			"(from = \"vault:...\"), or a literal. The plan compares content by digests each agent\n" +
			"computes under its own key, so values are never shown or compared in the clear.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the secrets `FILE` (.hcl, .yaml or .yml)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan, and change nothing"},
			&cli.BoolFlag{Name: "prune", Usage: "delete secrets the file does not declare"},
			&cli.BoolFlag{Name: "replace", Usage: "replace secrets whose content differs from the file"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask before deleting or replacing"},
			&cli.BoolFlag{Name: "no-check", Usage: "store provider references (from = ...) even where the agent has no such provider plugin (yet)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush apply` takes no arguments; got %q (give the file with -f FILE)", c.Args().First())
			}
			if c.String("file") == "" {
				return usageErrorf(c, "missing -f FILE: give a secrets file, such as examples/secrets.hcl")
			}
			f, err := ui.loadFleet()
			if err != nil {
				return err
			}
			return applySecrets(c.Context, f, &applyOptions{
				File: c.String("file"), DryRun: c.Bool("dry-run"), Prune: c.Bool("prune"),
				Replace: c.Bool("replace"), Yes: c.Bool("yes"), NoCheck: c.Bool("no-check"), UI: ui,
			})
		},
	}
}

type applyOptions struct {
	File                   string
	DryRun, Prune, Replace bool
	Yes                    bool
	// NoCheck stores references to providers an agent has no plugin of.
	NoCheck bool
	UI      *UI
}

// applySecrets makes every cluster hold the declared secrets: it reads the
// clusters, plans per cluster, prints the plan, and carries it out.
func applySecrets(ctx context.Context, f *fleet.Fleet, opts *applyOptions) error {
	ui := opts.UI
	file, warnings, err := spec.ParseSecretsFile(opts.File)
	for _, w := range warnings {
		ui.Warn("%s", w)
	}
	if err != nil {
		return err
	}
	for _, s := range file.Secrets {
		s.Request.NoCheck = opts.NoCheck && s.Request.From != ""
	}
	replicas, failed, err := fetchReplicas(ctx, f, ui)
	if err != nil {
		return err
	}
	same, err := fleet.CompareDeclared(ctx, f, replicas, file.Secrets)
	if err != nil {
		return err
	}
	plan := fleet.PlanApply(file.Secrets, replicas, same, &fleet.ApplyOptions{File: opts.File, Replace: opts.Replace, Prune: opts.Prune})
	for _, d := range plan.Conflicts {
		ui.Warn("%s", d)
	}
	// Exit 1 while anything stays out of step, on a dry run too.
	inStep := failed == 0 && len(plan.Conflicts) == 0
	if failed > 0 {
		ui.Warn("%d of %d clusters did not answer; run `hush apply -f %s` again when they do", failed, len(f.Clusters), opts.File)
	}
	switch {
	case len(plan.Steps) == 0 && inStep:
		ui.Success("No changes: every cluster matches %s", opts.File)
		return nil
	case len(plan.Steps) == 0:
		ui.Info("Nothing changed")
		return errReported
	}
	fmt.Fprintf(ui.out, "Plan for %s:\n", opts.File)
	printSteps(ui, fleet.ClusterNames(replicas), plan.Steps)
	destructive := slices.ContainsFunc(plan.Steps, func(s fleet.Step) bool { return s.Removes() })
	declined := false
	if !opts.DryRun && destructive && !opts.Yes && ui.interactive() {
		ok, err := ui.Confirm("Delete or replace secrets as planned?")
		if err != nil {
			return err
		}
		declined = !ok
	}
	switch {
	case opts.DryRun:
		ui.Info("Dry run: nothing was changed (%d change(s) planned)", len(plan.Steps))
	case declined:
		ui.Info("Nothing changed")
		return nil
	default:
		if err := carryOut(ctx, f, plan.Steps, ui); err != nil {
			ui.Hint("Run `hush apply -f %s` again once the failures above are fixed.", opts.File)
			return err
		}
		ui.Success("Applied %d change(s): %s", len(plan.Steps), plan.Summary())
	}
	if !inStep {
		return errReported
	}
	return nil
}
