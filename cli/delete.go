package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

func deleteCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "delete resources",
		Subcommands: []*cli.Command{{
			Name:      "secret",
			Aliases:   []string{"secrets"},
			Usage:     "delete secrets from every cluster",
			ArgsUsage: "NAME... | --all",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Usage: "delete all your secrets"},
				&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
			},
			Action: func(c *cli.Context) error {
				opts := &deleteSecretsOptions{Names: c.Args().Slice(), All: c.Bool("all"), Yes: c.Bool("yes"), UI: ui}
				switch {
				case opts.All && len(opts.Names) > 0:
					return usageErrorf(c, "give secret names or --all, not both")
				case !opts.All && len(opts.Names) == 0:
					return usageErrorf(c, "give the names of the secrets to delete, or --all")
				}
				client, err := newClient()
				if err != nil {
					return err
				}
				return deleteSecrets(c.Context, client, opts)
			},
		}, deleteRunsCommand(ui)},
	}
}

type deleteSecretsOptions struct {
	Names []string
	All   bool
	Yes   bool
	UI    *UI
}

// deleteSecrets deletes the named secrets, or all of them. It checks that
// every name exists before deleting any, so a typo deletes nothing.
func deleteSecrets(ctx context.Context, client *api.Client, opts *deleteSecretsOptions) error {
	existing, err := client.ListSecrets(ctx, "")
	if err != nil {
		return err
	}
	have := make([]string, len(existing))
	for i, s := range existing {
		have[i] = s.Name
	}
	names := slices.Compact(slices.Sorted(slices.Values(opts.Names)))
	if opts.All {
		names = have
	}
	var missing []string
	for _, n := range names {
		if !slices.Contains(have, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no secret named %s: nothing was deleted; `hush get secrets` lists your secrets", strings.Join(missing, ", "))
	}
	return applyEach(opts.UI, opts.Yes, names, action{noun: "secret", verb: "delete", done: "Deleted", nothing: "Nothing deleted"},
		func(n string) error { return client.DeleteSecret(ctx, n) })
}

// action names what applyEach does, for its messages.
type action struct {
	noun, verb string
	// done starts the success line ("Deleted"); nothing is said when the
	// person declines.
	done, nothing string
}

// applyEach asks on a terminal (unless yes), then applies do to each
// target in turn, reporting what was done even when one fails.
func applyEach(ui *UI, yes bool, targets []string, a action, do func(string) error) error {
	if len(targets) == 0 {
		ui.Info("No %ss to %s", a.noun, a.verb)
		return nil
	}
	if !yes && ui.interactive() &&
		!ui.Confirm(fmt.Sprintf("%s %d %s(s): %s?", strings.ToUpper(a.verb[:1])+a.verb[1:], len(targets), a.noun, strings.Join(targets, ", "))) {
		ui.Info("%s", a.nothing)
		return nil
	}
	var done []string
	for _, n := range targets {
		if err := do(n); err != nil {
			if len(done) > 0 {
				ui.Success("%s %s(s): %s", a.done, a.noun, strings.Join(done, ", "))
			}
			return fmt.Errorf("%s %s %s: %w", a.verb, a.noun, n, err)
		}
		done = append(done, n)
	}
	ui.Success("%s %s(s): %s", a.done, a.noun, strings.Join(done, ", "))
	return nil
}
