package cli

import (
	"cmp"
	"context"
	"slices"
	"strconv"
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
		}, getRunsCommand(ui), getPluginsCommand(ui)},
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
	return listing[*api.Secret]{
		empty:  "No secrets found. Create one with `hush create secret env KEY=VALUE`.",
		header: []string{"NAME", "TYPE", "SOURCE", "CREATED"},
		name:   func(s *api.Secret) string { return s.Name },
		row: func(s *api.Secret) []string {
			return []string{s.Name, string(s.Type), s.Source, s.CreatedAt.Local().Format(time.DateTime)}
		},
	}.print(opts.UI, opts.Output, secrets)
}

func getPluginsCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:    "plugins",
		Aliases: []string{"plugin"},
		Usage:   "list the agent's provider plugins and their state",
		Flags:   []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush get plugins` takes no arguments; got %q", c.Args().First())
			}
			output := c.String("output")
			if err := checkOutput(c, output); err != nil {
				return err
			}
			client, err := newClient()
			if err != nil {
				return err
			}
			plugins, err := client.ListPlugins(c.Context)
			if err != nil {
				return err
			}
			return listing[api.PluginStatus]{
				empty:  "This agent has no provider plugins. Declare them with plugin blocks or plugin_dir in its config.",
				header: []string{"NAME", "VERSION", "STATE", "PATH", "RESTARTS", "ERROR"},
				name:   func(p api.PluginStatus) string { return p.Name },
				row: func(p api.PluginStatus) []string {
					return []string{p.Name, cmp.Or(p.Version, "-"), string(p.State), p.Path, strconv.Itoa(p.Restarts), p.Error}
				},
			}.print(ui, output, plugins)
		},
	}
}
