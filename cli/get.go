package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
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
				f, err := ui.loadFleet()
				if err != nil {
					return err
				}
				return getSecrets(c.Context, f, opts)
			},
		}, getRunsCommand(ui), getPluginsCommand(ui), getClustersCommand(ui), getNodesCommand(ui)},
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

// clusterSecret is a secret as the clusters hold it.
type clusterSecret struct {
	*api.Secret `yaml:",inline"`
	// Clusters are the clusters holding the secret with this id.
	Clusters []string `json:"clusters" yaml:"clusters"`
	// Missing are the clusters that answered and do not hold the name.
	Missing []string `json:"missing,omitempty" yaml:"missing,omitempty"`
	// Conflicts are the clusters holding the name with another id.
	Conflicts []string `json:"conflicts,omitempty" yaml:"conflicts,omitempty"`
	// Unreachable are the clusters that did not answer.
	Unreachable []string `json:"unreachable,omitempty" yaml:"unreachable,omitempty"`
}

// getSecrets lists the secrets of every cluster, showing where each is
// missing, so drift shows at a glance.
func getSecrets(ctx context.Context, f *fleet.Fleet, opts *getSecretsOptions) error {
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) (*api.ListSecretsResponse, error) {
		return c.Client.ListSecretsReport(ctx, opts.Type)
	})
	if err := answered(opts.UI, results); err != nil {
		return err
	}
	var replicas []*fleet.Replica
	var unreachable []string
	for _, r := range results {
		if r.Err != nil {
			unreachable = append(unreachable, r.Cluster.Name)
			continue
		}
		replicas = append(replicas, fleet.NewReplica(r.Cluster.Name, r.Value.Secrets, nil))
		warnUnreadable(opts.UI, f, r.Cluster.Name, r.Value.Unreadable)
	}
	var rows []*clusterSecret
	for _, c := range fleet.Collate(replicas) {
		ids := c.Live()
		for _, id := range ids {
			row := &clusterSecret{Secret: c.Meta[id], Clusters: c.Holders[id], Unreachable: unreachable}
			for _, r := range replicas {
				switch s := r.Secrets[c.Name]; {
				case s == nil:
					row.Missing = append(row.Missing, r.Cluster)
				case s.ID != id:
					row.Conflicts = append(row.Conflicts, r.Cluster)
				}
			}
			rows = append(rows, row)
		}
	}
	header := []string{"NAME", "TYPE", "SOURCE", "CREATED"}
	if !f.Direct {
		header = append(header, "CLUSTERS")
	}
	return listing[*clusterSecret]{
		empty:  "No secrets found. Create one with `hush create secret env KEY=VALUE`.",
		header: header,
		name:   func(s *clusterSecret) string { return s.Name },
		row: func(s *clusterSecret) []string {
			row := []string{s.Name, string(s.Type), s.Source, s.CreatedAt.Local().Format(time.DateTime)}
			if f.Direct {
				return row
			}
			return append(row, s.where(len(f.Clusters)))
		},
	}.print(opts.UI, opts.Output, rows)
}

// warnUnreadable warns of each secret a cluster holds but cannot read, and
// says how to delete it.
func warnUnreadable(ui *UI, f *fleet.Fleet, cluster string, unreadable []*api.UnreadableSecret) {
	for _, u := range unreadable {
		id := ""
		if u.ID != "" {
			id = " (id " + u.ID + ")"
		}
		if f.Direct {
			ui.Warn("Secret %s%s cannot be read by the agent (%s): delete it with `hush delete secret %s` and create it again",
				u.Name, id, u.Error, u.Name)
			continue
		}
		// A delete reaches every cluster, and its tombstones keep sync
		// from bringing the secret back: say so before anyone does it.
		ui.Warn("Secret %s%s on cluster %s cannot be read by that agent (%s): if the other clusters hold it whole, have that agent's keyring restored; "+
			"`hush delete secret %s` would delete it on every cluster",
			u.Name, id, cluster, u.Error, u.Name)
	}
}

// where renders the CLUSTERS column: "3/3", or how many clusters hold the
// secret and what the others do.
func (s *clusterSecret) where(total int) string {
	parts := []string{fmt.Sprintf("%d/%d", len(s.Clusters), total)}
	for _, p := range []struct {
		what     string
		clusters []string
	}{{"missing", s.Missing}, {"another id", s.Conflicts}, {"unreachable", s.Unreachable}} {
		if len(p.clusters) > 0 {
			parts = append(parts, p.what+": "+strings.Join(p.clusters, ","))
		}
	}
	return strings.Join(parts, ", ")
}

func getPluginsCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:    "plugins",
		Aliases: []string{"plugin"},
		Usage:   "list the agent's provider plugins and their state",
		Flags:   []cli.Flag{outputFlag(), clusterFlag("the default cluster")},
		Action: func(c *cli.Context) error {
			client, output, err := listClient(c, ui)
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
