package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hush-sh/hush/agent"
	"github.com/hush-sh/hush/agent/config"
	"github.com/urfave/cli/v2"
)

func agentCommand(version string, ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run the hush agent daemon on this node",
		Description: "The agent stores secrets encrypted and serves the HTTP API that the CLI uses.\n" +
			"Settings come from HCL files (-config, repeatable, later files override earlier ones)\n" +
			"and then from flags. `hush agent -dev` starts a throwaway agent and prints a root token.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dev", Usage: "run in dev mode: a temporary data dir (unless -data-dir is given) and a printed root token"},
			&cli.StringSliceFlag{Name: "config", Usage: "read settings from HCL `FILE` (repeatable; later files win)"},
			&cli.StringFlag{Name: "data-dir", Usage: "keep the store, keyring and root token in `DIR`"},
			&cli.StringFlag{Name: "bind", Usage: "serve the HTTP API on `HOST:PORT` (default " + config.DefaultBind + ")"},
			&cli.StringFlag{Name: "cluster", Usage: "the `NAME` of the cluster this agent belongs to (default " + config.DefaultCluster + ")"},
			&cli.StringFlag{Name: "node-name", Usage: "the `NAME` of this node (default: the host name)"},
			&cli.StringFlag{Name: "log-level", Usage: "log `LEVEL`: trace, debug, info, warn or error (default " + config.DefaultLogLevel + ")"},
			&cli.BoolFlag{Name: "log-json", Usage: "write logs as JSON lines"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush agent` takes no arguments; got %q", c.Args().First())
			}
			cfg, diags := config.LoadFiles(c.StringSlice("config")...)
			if diags.HasErrors() {
				return errors.New("invalid agent configuration:\n" + config.FormatDiagnostics(diags))
			}
			// Checked here, by the flag's name: the config's data_dir
			// diagnostic points at a file that the flag overrides.
			if d := c.String("data-dir"); c.IsSet("data-dir") && !filepath.IsAbs(d) {
				abs, _ := filepath.Abs(d)
				return fmt.Errorf("invalid agent settings:\n-data-dir %q must be an absolute path, such as %s", d, abs)
			}
			for flag, field := range map[string]*string{
				"data-dir": &cfg.DataDir, "bind": &cfg.Bind, "cluster": &cfg.Cluster,
				"node-name": &cfg.NodeName, "log-level": &cfg.LogLevel,
			} {
				if c.IsSet(flag) {
					*field = c.String(flag)
				}
			}
			if c.IsSet("log-json") {
				cfg.LogJSON = c.Bool("log-json")
			}
			// Flags have no source ranges; report them by name.
			if diags := cfg.Validate(); diags.HasErrors() {
				return errors.New("invalid agent settings:\n" + config.FormatDiagnostics(diags))
			}
			return agent.Run(c.Context, &agent.Options{
				Config: cfg, Dev: c.Bool("dev"), Version: version, Stdout: ui.out, Stderr: ui.err,
			})
		},
	}
}
