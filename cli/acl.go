package cli

import (
	"context"
	"fmt"

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
			Subcommands: []*cli.Command{{
				Name:  "create",
				Usage: "create a token for a user (needs a management token)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "user", Usage: "the `NAME` of the user the token acts as"},
					&cli.StringFlag{Name: "description", Usage: "a note on what the token is for"},
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
					client, err := targetClient(c, ui)
					if err != nil {
						return err
					}
					return createToken(c.Context, client, &createTokenOptions{
						Request: &api.CreateTokenRequest{User: c.String("user"), Description: c.String("description")},
						Quiet:   c.Bool("quiet"),
						UI:      ui,
					})
				},
			}},
		}},
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
	opts.UI.Info("It is shown only this once. Use it with `export %s=...`.", api.EnvToken)
	return nil
}
