package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

func aclCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "acl",
		Usage: "manage access to agents",
		Subcommands: []*cli.Command{{
			Name:  "token",
			Usage: "manage tokens",
			Subcommands: []*cli.Command{
				createTokenCommand(ui), listTokensCommand(ui), revokeTokenCommand(ui),
			},
		}},
	}
}

func createTokenCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "create",
		Usage: "create a token for a user (needs a management token)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Usage: "the `NAME` of the user the token acts as"},
			&cli.StringFlag{Name: "description", Usage: "a note on what the token is for, shown by `hush acl token list`"},
			&cli.DurationFlag{Name: "ttl", Usage: "how long the token works, such as 8h or 720h; without it, until revoked"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the token"},
			clusterFlag("the default cluster"),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush acl token create` takes no arguments; got %q", c.Args().First())
			}
			if c.String("user") == "" {
				return usageErrorf(c, "missing --user: name the user the token acts as")
			}
			if c.Duration("ttl") < 0 {
				return usageErrorf(c, "--ttl %s is negative: give how long the token works, such as 8h", c.Duration("ttl"))
			}
			client, err := targetClient(c, ui)
			if err != nil {
				return err
			}
			return createToken(c.Context, client, &createTokenOptions{
				Request: &api.CreateTokenRequest{User: c.String("user"), Description: c.String("description"),
					TTL: api.Duration(c.Duration("ttl"))},
				Quiet: c.Bool("quiet"),
				UI:    ui,
			})
		},
	}
}

type createTokenOptions struct {
	Request *api.CreateTokenRequest
	Quiet   bool
	UI      *UI
}

func createToken(ctx context.Context, client *api.Client, opts *createTokenOptions) error {
	tok, err := client.CreateToken(ctx, opts.Request)
	if err != nil {
		return err
	}
	if opts.Quiet {
		fmt.Fprintln(opts.UI.out, tok.Secret)
		return nil
	}
	opts.UI.Success("Created a token for user %s", tok.User)
	fmt.Fprintf(opts.UI.out, "   Accessor: %s\n   Token:    %s\n", tok.Accessor, tok.Secret)
	if tok.ExpiresAt != nil {
		fmt.Fprintf(opts.UI.out, "   Expires:  %s\n", tok.ExpiresAt.Local().Format(time.DateTime))
	}
	opts.UI.Info("It is shown only this once. Use it with `export %s=...`.", api.EnvToken)
	return nil
}

func listTokensCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list tokens, never their secrets: yours, or every user's with a management token",
		Flags: []cli.Flag{outputFlag(), clusterFlag("the default cluster")},
		Action: func(c *cli.Context) error {
			client, output, err := listClient(c, ui)
			if err != nil {
				return err
			}
			return listTokens(c.Context, client, &listTokensOptions{Output: output, UI: ui, Now: time.Now()})
		},
	}
}

type listTokensOptions struct {
	Output string
	UI     *UI
	// Now is the time expiries are shown against.
	Now time.Time
}

func listTokens(ctx context.Context, client *api.Client, opts *listTokensOptions) error {
	tokens, err := client.ListTokens(ctx)
	if err != nil {
		return err
	}
	return listing[*api.Token]{
		empty:  "No tokens found.",
		header: []string{"ACCESSOR", "USER", "DESCRIPTION", "CREATED", "EXPIRES", "LAST USED"},
		name:   func(t *api.Token) string { return t.Accessor },
		row: func(t *api.Token) []string {
			user := t.User
			if t.Management {
				user += " (management)"
			}
			return []string{t.Accessor, user, t.Description, t.CreatedAt.Local().Format(time.DateTime),
				expiryCell(t, opts.Now), usedCell(t.LastUsedAt)}
		},
	}.print(opts.UI, opts.Output, tokens)
}

// expiryCell renders the EXPIRES column: never, the time, or that the
// token has expired.
func expiryCell(t *api.Token, now time.Time) string {
	switch {
	case t.ExpiresAt == nil:
		return "never"
	case t.Expired || !now.Before(*t.ExpiresAt):
		return "expired " + t.ExpiresAt.Local().Format(time.DateTime)
	}
	return t.ExpiresAt.Local().Format(time.DateTime)
}

func usedCell(at *time.Time) string {
	if at == nil {
		return "never"
	}
	return at.Local().Format(time.DateTime)
}

func revokeTokenCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "revoke a token by its accessor: yours, or any with a management token",
		ArgsUsage: "ACCESSOR",
		Description: "Revokes only that token: its user's runs keep running (they hold tokens of their\n" +
			"own), and their secrets and other tokens stay. `hush acl token list` shows accessors.",
		Flags: []cli.Flag{clusterFlag("the default cluster")},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf(c, "`hush acl token revoke` takes one ACCESSOR (see `hush acl token list`); got %d arguments", c.NArg())
			}
			client, err := targetClient(c, ui)
			if err != nil {
				return err
			}
			accessor := c.Args().First()
			if err := client.RevokeToken(c.Context, accessor); err != nil {
				return err
			}
			ui.Success("Revoked token %s", accessor)
			return nil
		},
	}
}
