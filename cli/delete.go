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
				&cli.StringFlag{Name: "user", Usage: "delete secrets of user `NAME` (needs a management token)"},
			},
			Action: func(c *cli.Context) error {
				opts := &deleteSecretsOptions{Names: c.Args().Slice(), All: c.Bool("all"), Yes: c.Bool("yes"), User: c.String("user"), UI: ui}
				switch {
				case opts.All && len(opts.Names) > 0:
					return usageErrorf(c, "give secret names or --all, not both")
				case !opts.All && len(opts.Names) == 0:
					return usageErrorf(c, "give the names of the secrets to delete, or --all")
				case opts.All && opts.User != "":
					return usageErrorf(c, "--all deletes your own secrets; name another user's secrets to delete them with --user")
				}
				f, err := ui.loadFleet()
				if err != nil {
					return err
				}
				if opts.User != "" {
					return deleteUserSecrets(c.Context, f, opts)
				}
				return deleteSecrets(c.Context, f, opts)
			},
		}, deleteRunsCommand(ui)},
	}
}

type deleteSecretsOptions struct {
	Names []string
	All   bool
	Yes   bool
	// User, when set, names the user whose secrets a management token
	// deletes.
	User string
	UI   *UI
}

// deleteSecrets deletes the named secrets, or all of them, from every
// cluster at once. It checks that every name exists somewhere before
// deleting any, so a typo deletes nothing. Each agent keeps a tombstone of
// what it deleted, so `hush sync secrets` never brings it back.
func deleteSecrets(ctx context.Context, f *fleet.Fleet, opts *deleteSecretsOptions) error {
	listed := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) ([]string, error) {
		// Secrets the agent cannot read are listed apart; they can be
		// deleted all the same.
		resp, err := c.Client.ListSecretsReport(ctx, "")
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range resp.Secrets {
			names = append(names, s.Name)
		}
		for _, u := range resp.Unreadable {
			names = append(names, u.Name)
		}
		return names, nil
	})
	// The clusters that did not answer are reported with the deletes, and
	// not asked again: that would only wait out their timeout twice.
	holds := map[*fleet.Cluster][]string{}
	var targets []*fleet.Cluster
	var failed []fleet.Result[struct{}]
	var have []string
	for _, r := range listed {
		if r.Err != nil {
			failed = append(failed, fleet.Result[struct{}]{Cluster: r.Cluster, Err: r.Err})
			continue
		}
		targets = append(targets, r.Cluster)
		holds[r.Cluster] = r.Value
		have = append(have, r.Value...)
	}
	if len(targets) == 0 {
		return answered(opts.UI, listed)
	}
	have = slices.Compact(slices.Sorted(slices.Values(have)))
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
	a := deleteSecret
	if ok, err := confirm(opts.UI, opts.Yes, names, a); !ok {
		return err
	}
	results := fleet.FanOut(ctx, f, targets, func(ctx context.Context, c *fleet.Cluster) (struct{}, error) {
		for _, n := range names {
			// A cluster that missed the secret's create has nothing to delete.
			if !slices.Contains(holds[c], n) {
				continue
			}
			if err := c.Client.DeleteSecret(ctx, n); err != nil && !errors.Is(err, api.ErrNotFound) {
				return struct{}{}, fmt.Errorf("delete secret %s: %w", n, err)
			}
		}
		return struct{}{}, nil
	})
	if slices.ContainsFunc(results, func(r fleet.Result[struct{}]) bool { return r.Err == nil }) {
		opts.UI.Success("%s %s(s): %s", a.done, a.noun, strings.Join(names, ", "))
	}
	return reportFanOut(opts.UI, append(results, failed...), syncRepairs)
}

// deleteUserSecrets deletes another user's secrets from every cluster, with
// a management token, which cannot list them first: a name no cluster holds
// is reported after the deletes.
func deleteUserSecrets(ctx context.Context, f *fleet.Fleet, opts *deleteSecretsOptions) error {
	names := slices.Compact(slices.Sorted(slices.Values(opts.Names)))
	a := deleteSecret
	a.of = " of user " + opts.User
	if ok, err := confirm(opts.UI, opts.Yes, names, a); !ok {
		return err
	}
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) ([]string, error) {
		var deleted []string
		for _, n := range names {
			err := c.Client.DeleteUserSecret(ctx, opts.User, n)
			switch {
			case errors.Is(err, api.ErrNotFound):
			case err != nil:
				return deleted, fmt.Errorf("delete secret %s of user %s: %w", n, opts.User, err)
			default:
				deleted = append(deleted, n)
			}
		}
		return deleted, nil
	})
	var deleted []string
	failed := make([]fleet.Result[struct{}], 0, len(results))
	for _, r := range results {
		deleted = append(deleted, r.Value...)
		failed = append(failed, fleet.Result[struct{}]{Cluster: r.Cluster, Err: r.Err})
	}
	deleted = slices.Compact(slices.Sorted(slices.Values(deleted)))
	if len(deleted) > 0 {
		opts.UI.Success("%s %s(s) of user %s: %s", a.done, a.noun, opts.User, strings.Join(deleted, ", "))
	}
	var missing []string
	for _, n := range names {
		if !slices.Contains(deleted, n) {
			missing = append(missing, n)
		}
	}
	// A cluster that did not answer may hold what the others lack: then
	// its failure is the news.
	if len(missing) > 0 && !slices.ContainsFunc(failed, func(r fleet.Result[struct{}]) bool { return r.Err != nil }) {
		return fmt.Errorf("user %s has no secret named %s: `hush get secrets` with that user's token lists them", opts.User, strings.Join(missing, ", "))
	}
	// Sync repairs the caller's own secrets, not this user's.
	return reportFanOut(opts.UI, failed, "run this command again once the others answer")
}

// action names what applyEach does, for its messages.
type action struct {
	noun, verb string
	// done starts the success line ("Deleted"); nothing is said when the
	// person declines.
	done, nothing string
	// of, when set, says whose targets they are, as " of user bob".
	of string
}

// deleteSecret is the action of deleting secrets.
var deleteSecret = action{noun: "secret", verb: "delete", done: "Deleted", nothing: "Nothing deleted"}

// confirm asks on a terminal (unless yes) whether to act on targets, and
// says so when there is nothing to do or the person declines. It fails
// when the command is interrupted at the question.
func confirm(ui *UI, yes bool, targets []string, a action) (bool, error) {
	if len(targets) == 0 {
		ui.Info("No %ss to %s", a.noun, a.verb)
		return false, nil
	}
	if yes || !ui.interactive() {
		return true, nil
	}
	ok, err := ui.Confirm(fmt.Sprintf("%s %d %s(s)%s: %s?", strings.ToUpper(a.verb[:1])+a.verb[1:], len(targets), a.noun, a.of, strings.Join(targets, ", ")))
	if err == nil && !ok {
		ui.Info("%s", a.nothing)
	}
	return ok, err
}

// applyEach confirms, then applies do to each target in turn, reporting
// what was done even when one fails.
func applyEach(ui *UI, yes bool, targets []string, a action, do func(string) error) error {
	if ok, err := confirm(ui, yes, targets, a); !ok {
		return err
	}
	var done []string
	for _, n := range targets {
		if err := do(n); err != nil {
			if len(done) > 0 {
				ui.Success("%s %s(s): %s", a.done, a.noun, strings.Join(done, ", "))
			}
			if whole := (*wholeError)(nil); errors.As(err, &whole) {
				return whole.err
			}
			return fmt.Errorf("%s %s %s: %w", a.verb, a.noun, n, err)
		}
		done = append(done, n)
	}
	ui.Success("%s %s(s): %s", a.done, a.noun, strings.Join(done, ", "))
	return nil
}

// wholeError is an error that names its target and says in full what
// happened, such as the agent's "run x has already ended (COMPLETED):
// nothing to stop": applyEach reports it as it is, without "stop run x:"
// before it.
type wholeError struct{ err error }

func (e *wholeError) Error() string { return e.err.Error() }

func (e *wholeError) Unwrap() error { return e.err }
