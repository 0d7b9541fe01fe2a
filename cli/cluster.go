package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

func clusterCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "manage the clusters in ~/.hush/config.yaml (HUSH_CONFIG)",
		Subcommands: []*cli.Command{{
			Name:      "add",
			Usage:     "add a cluster, or change one",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "address", Usage: "an agent of the cluster, as `URL` (http://HOST:4747); repeat it, or separate by commas, for each of its servers"},
				&cli.StringFlag{Name: "token", Usage: "your `TOKEN` for the cluster (- reads stdin; prompted for on a terminal)"},
				&cli.StringFlag{Name: "token-file", Usage: "a `FILE` holding your token, read each time"},
				&cli.StringFlag{Name: "ca-cert", Usage: "PEM `FILE` of the CA of the agent's certificate"},
				&cli.StringFlag{Name: "client-cert", Usage: "PEM `FILE` of your client certificate, for an agent that requires mutual TLS"},
				&cli.StringFlag{Name: "client-key", Usage: "PEM `FILE` of your client certificate's key"},
				&cli.BoolFlag{Name: "default", Usage: "send runs here when no cluster is chosen"},
			},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one cluster NAME"); err != nil {
					return err
				}
				cc := &fleet.ClusterConfig{Name: c.Args().First(), Address: strings.Join(c.StringSlice("address"), ","),
					TokenFile: c.String("token-file"), CACert: absPath(c.String("ca-cert")),
					ClientCert: absPath(c.String("client-cert")), ClientKey: absPath(c.String("client-key"))}
				if (cc.ClientCert == "") != (cc.ClientKey == "") {
					return usageErrorf(c, "give --client-cert and --client-key together: a certificate is of no use without its key")
				}
				if err := fleet.CheckClusterName(cc.Name); err != nil {
					return usageErrorf(c, "%v", err)
				}
				if cc.Address == "" {
					return usageErrorf(c, "missing --address: give an agent of the cluster, such as http://10.0.0.5:4747")
				}
				if err := fleet.CheckAddress(cc.Address); err != nil {
					return usageErrorf(c, "--address: %v", err)
				}
				token, err := tokenInput(c, ui)
				if err != nil {
					return err
				}
				cc.Token = token
				return addCluster(c.Context, &addClusterOptions{Cluster: cc, Default: c.Bool("default"), UI: ui})
			},
		}, {
			Name:      "remove",
			Aliases:   []string{"rm"},
			Usage:     "forget a cluster (its agents and secrets are left as they are)",
			ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one cluster NAME"); err != nil {
					return err
				}
				return removeCluster(c.Args().First(), ui)
			},
		}},
	}
}

// tokenInput reads --token or --token-file; exactly one must be given, or
// the token is prompted for on a terminal.
func tokenInput(c *cli.Context, ui *UI) (string, error) {
	token := c.String("token")
	switch {
	case c.IsSet("token") && c.IsSet("token-file"):
		return "", usageErrorf(c, "give --token or --token-file, not both")
	case c.IsSet("token-file"):
		return "", nil
	case token == "-":
		b, err := readStdin(ui)
		if err != nil {
			return "", fmt.Errorf("--token: %w", err)
		}
		token = string(trimNewline(b))
	case token == "" && ui.interactive():
		b, err := ui.ReadSecret("token")
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		token = string(b)
	}
	if token == "" {
		return "", usageErrorf(c, "missing --token or --token-file: `hush acl token create` on the cluster gives you one")
	}
	return token, nil
}

type addClusterOptions struct {
	Cluster *fleet.ClusterConfig
	Default bool
	UI      *UI
}

// addCluster checks that the cluster answers, then saves it in the config.
// A cluster that does not answer now is saved anyway, with a warning: it
// may be down for a while.
func addCluster(ctx context.Context, opts *addClusterOptions) error {
	cfg, err := fleet.LoadConfig(opts.UI.env)
	if err != nil {
		return err
	}
	timeout, _ := cfg.RequestTimeout() // validated on load
	cl, err := opts.Cluster.Connect(opts.UI.env, timeout)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", opts.Cluster.Name, err)
	}
	self, err := cl.Client.Self(ctx)
	switch {
	case errors.Is(err, api.ErrUnauthorized):
		return fmt.Errorf("cluster %s rejected the token: check it, or make one with `hush acl token create` on the cluster; nothing was saved", cl.Name)
	case err != nil:
		opts.UI.Warn("cluster %s does not answer now: %v", cl.Name, err)
		self = nil
	}
	verb := "Added"
	if old := cfg.Cluster(cl.Name); old != nil {
		*old = *opts.Cluster
		verb = "Updated"
	} else {
		cfg.Clusters = append(cfg.Clusters, opts.Cluster)
	}
	if opts.Default || len(cfg.Clusters) == 1 {
		cfg.Default = cl.Name
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	if self != nil {
		opts.UI.Success("%s cluster %s (agent %s of %s, hush %s, user %s)", verb, cl.Name, self.Node, self.Cluster, self.Version, self.User)
	} else {
		opts.UI.Success("%s cluster %s", verb, cl.Name)
	}
	if cfg.Default == cl.Name {
		opts.UI.Info("Runs go to %s unless you choose another cluster", cl.Name)
	}
	return nil
}

func removeCluster(name string, ui *UI) error {
	cfg, err := fleet.LoadConfig(ui.env)
	if err != nil {
		return err
	}
	if cfg.Cluster(name) == nil {
		return fmt.Errorf("no cluster named %s in %s: `hush get clusters` lists them", name, cfg.Path())
	}
	kept := cfg.Clusters[:0]
	for _, c := range cfg.Clusters {
		if c.Name != name {
			kept = append(kept, c)
		}
	}
	cfg.Clusters = kept
	if cfg.Default == name {
		cfg.Default = ""
		if len(kept) == 1 {
			cfg.Default = kept[0].Name
		}
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	ui.Success("Removed cluster %s; its agents and secrets are untouched", name)
	return nil
}

// clusterStatus is a row of `hush get clusters`.
type clusterStatus struct {
	Name      string `json:"name" yaml:"name"`
	Address   string `json:"address" yaml:"address"`
	Default   bool   `json:"default" yaml:"default"`
	Reachable bool   `json:"reachable" yaml:"reachable"`
	// Status is reachable, unreachable, "token rejected" (the agent
	// answered), or misconfigured (the config entry cannot be used).
	Status  string `json:"status" yaml:"status"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	Secrets int    `json:"secrets" yaml:"secrets"`
	// LatencyMS is the round trip of the status call.
	LatencyMS float64 `json:"latency_ms" yaml:"latency_ms"`
	Error     string  `json:"error,omitempty" yaml:"error,omitempty"`
}

func getClustersCommand(ui *UI) *cli.Command {
	return fleetGetCommand(ui, "clusters", "cluster", "list your clusters and whether they answer", getClusters)
}

// fleetGetCommand is a `get` command that takes no arguments and shows
// what get reads from every cluster of the fleet.
func fleetGetCommand(ui *UI, name, alias, usage string, get func(context.Context, *fleet.Fleet, string, *UI) error) *cli.Command {
	return &cli.Command{
		Name:    name,
		Aliases: []string{alias},
		Usage:   usage,
		Flags:   []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush get %s` takes no arguments; got %q", name, c.Args().First())
			}
			output := c.String("output")
			if err := checkOutput(c, output); err != nil {
				return err
			}
			f, err := ui.loadFleet()
			if err != nil {
				return err
			}
			return get(c.Context, f, output, ui)
		},
	}
}

func getClusters(ctx context.Context, f *fleet.Fleet, output string, ui *UI) error {
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) (*clusterStatus, error) {
		st := &clusterStatus{Name: c.Name, Address: c.Address, Default: c == f.Default}
		start := time.Now()
		self, err := c.Client.Self(ctx)
		st.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
		if err == nil {
			st.Reachable, st.Version = true, self.Version
			var secrets []*api.Secret
			secrets, err = c.Client.ListSecrets(ctx, "")
			st.Secrets = len(secrets)
		}
		switch {
		case err == nil:
			st.Status = "reachable"
		case errors.Is(err, api.ErrUnauthorized):
			st.Status, st.Reachable = "token rejected", true // it answered
		default:
			st.Status, st.Reachable = "unreachable", false
		}
		if err != nil {
			st.Error = f.Explain(c, err).Error()
		}
		return st, nil
	})
	rows := make([]*clusterStatus, len(results))
	for i, r := range results {
		rows[i] = r.Value
		if r.Err != nil { // a config entry that cannot be used
			rows[i] = &clusterStatus{Name: r.Cluster.Name, Address: r.Cluster.Address, Default: r.Cluster == f.Default,
				Status: "misconfigured", Error: r.Err.Error()}
		}
	}
	err := listing[*clusterStatus]{
		empty:  "No clusters. Add one with `hush cluster add NAME --address URL --token-file FILE`.",
		header: []string{"NAME", "ADDRESS", "STATUS", "VERSION", "SECRETS", "LATENCY"},
		name:   func(s *clusterStatus) string { return s.Name },
		row: func(s *clusterStatus) []string {
			name := s.Name
			if s.Default {
				name += " (default)"
			}
			if s.Status != "reachable" {
				return []string{name, s.Address, s.Status, "-", "-", "-"}
			}
			return []string{name, s.Address, s.Status, s.Version, strconv.Itoa(s.Secrets),
				strconv.FormatFloat(s.LatencyMS, 'f', 1, 64) + "ms"}
		},
	}.print(ui, output, rows)
	if output == formatTable {
		for _, s := range rows {
			if s.Error != "" {
				ui.Warn("cluster %s: %s", s.Name, s.Error)
			}
		}
	}
	return err
}

// absPath makes a file named on the command line absolute, so that the
// config file names it wherever hush runs later. Empty stays empty.
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
