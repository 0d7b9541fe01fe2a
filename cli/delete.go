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
	if len(names) == 0 {
		opts.UI.Info("No secrets to delete")
		return nil
	}
	if !opts.Yes && opts.UI.interactive() &&
		!opts.UI.Confirm(fmt.Sprintf("Delete %d secret(s): %s?", len(names), strings.Join(names, ", "))) {
		opts.UI.Info("Nothing deleted")
		return nil
	}
	var deleted []string
	for _, n := range names {
		if err := client.DeleteSecret(ctx, n); err != nil {
			if len(deleted) > 0 {
				opts.UI.Success("Deleted secret(s): %s", strings.Join(deleted, ", "))
			}
			return fmt.Errorf("delete secret %s: %w", n, err)
		}
		deleted = append(deleted, n)
	}
	opts.UI.Success("Deleted secret(s): %s", strings.Join(deleted, ", "))
	return nil
}
