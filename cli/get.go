package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

func getCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "list resources",
		Subcommands: []*cli.Command{{
			Name:    "secrets",
			Aliases: []string{"secret"},
			Usage:   "list your secrets (names and types, never values)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "type", Usage: "only secrets of `TYPE`"},
				outputFlag(),
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageErrorf(c, "`hush get secrets` takes no arguments; got %q", c.Args().First())
				}
				opts := &getSecretsOptions{Type: api.SecretType(c.String("type")), Output: c.String("output"), UI: ui}
				if opts.Type != "" {
					if _, ok := api.LookupType(opts.Type); !ok {
						return usageErrorf(c, "unknown secret type %q: use one of %s", opts.Type, strings.Join(api.TypeNames(), ", "))
					}
				}
				if err := checkOutput(c, opts.Output); err != nil {
					return err
				}
				client, err := newClient()
				if err != nil {
					return err
				}
				return getSecrets(c.Context, client, opts)
			},
		}, getRunsCommand(ui)},
	}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: formatTable,
		Usage: "output `FORMAT`: " + strings.Join(outputFormats, ", ")}
}

func checkOutput(c *cli.Context, format string) error {
	if !slices.Contains(outputFormats, format) {
		return usageErrorf(c, "unknown output format %q: use one of %s", format, strings.Join(outputFormats, ", "))
	}
	return nil
}

type getSecretsOptions struct {
	Type   api.SecretType
	Output string
	UI     *UI
}

func getSecrets(ctx context.Context, client *api.Client, opts *getSecretsOptions) error {
	secrets, err := client.ListSecrets(ctx, opts.Type)
	if err != nil {
		return err
	}
	out := opts.UI.out
	switch opts.Output {
	case formatJSON, formatYAML:
		return printStructured(out, opts.Output, secrets)
	case formatName:
		for _, s := range secrets {
			fmt.Fprintln(out, s.Name)
		}
		return nil
	}
	if len(secrets) == 0 {
		opts.UI.Info("No secrets found. Create one with `hush create secret env KEY=VALUE`.")
		return nil
	}
	rows := make([][]string, len(secrets))
	for i, s := range secrets {
		rows[i] = []string{s.Name, string(s.Type), s.CreatedAt.Local().Format(time.DateTime)}
	}
	return table(out, []string{"NAME", "TYPE", "CREATED"}, rows)
}
