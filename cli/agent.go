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
			&cli.StringFlag{Name: "tls-cert-file", Usage: "serve HTTPS with the certificate in PEM `FILE` (tls { cert_file })"},
			&cli.StringFlag{Name: "tls-key-file", Usage: "the certificate's key, PEM `FILE` (tls { key_file })"},
			&cli.StringFlag{Name: "tls-ca-file", Usage: "CA certificates, PEM `FILE`, that sign client certificates (tls { ca_file })"},
			&cli.BoolFlag{Name: "tls-verify-incoming", Usage: "require a client certificate signed by -tls-ca-file (mutual TLS)"},
			&cli.StringFlag{Name: "tls-min-version", Usage: "the oldest TLS `VERSION` accepted: tls12 or tls13 (default tls12)"},
			&cli.BoolFlag{Name: "insecure-http", Usage: "allow plain HTTP on an address other hosts reach, as behind a TLS-terminating proxy"},
			&cli.BoolFlag{Name: "server", Usage: "be one of the servers of a cluster of several (server { enabled })"},
			&cli.IntFlag{Name: "bootstrap-expect", Usage: "how many servers form the new cluster, `N`, the same on each (server { bootstrap_expect })"},
			&cli.StringSliceFlag{Name: "retry-join", Usage: "another server's API address, `HOST:PORT`, to join through (repeatable; server { retry_join })"},
			&cli.StringFlag{Name: "raft-bind", Usage: "serve the servers' Raft traffic on `HOST:PORT` (server { raft_bind }; default the bind host, port 4648)"},
			&cli.BoolFlag{Name: "client", Usage: "run the workloads the servers place on this node (client { enabled }); -client=false keeps a server's node free of runs"},
			&cli.StringSliceFlag{Name: "servers", Usage: "the servers' API addresses, `HOST:PORT,...`, that a client registers with (adds to client { servers })"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush agent` takes no arguments; got %q", c.Args().First())
			}
			cfg, err := agentConfig(c)
			if err != nil {
				return err
			}
			return agent.Run(c.Context, &agent.Options{
				Config: cfg, Dev: c.Bool("dev"), Version: version, Stdout: ui.out, Stderr: ui.err,
				// SIGHUP reads the files again, with the same flags.
				Reload: func() (*config.Config, error) { return agentConfig(c) },
			})
		},
	}
}

// agentConfig loads the agent's config files, applies its flags over them
// and checks the result.
func agentConfig(c *cli.Context) (*config.Config, error) {
	cfg, diags := config.LoadFiles(c.StringSlice("config")...)
	if diags.HasErrors() {
		return nil, errors.New("invalid agent configuration:\n" + config.FormatDiagnostics(diags))
	}
	// Checked here, by the flag's name: the config's data_dir
	// diagnostic points at a file that the flag overrides.
	if d := c.String("data-dir"); c.IsSet("data-dir") && !filepath.IsAbs(d) {
		abs, _ := filepath.Abs(d)
		return nil, fmt.Errorf("invalid agent settings:\n-data-dir %q must be an absolute path, such as %s", d, abs)
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
	if c.IsSet("insecure-http") {
		cfg.InsecureHTTP = c.Bool("insecure-http")
	}
	tlsFlags(c, cfg)
	serverFlags(c, cfg)
	clientFlags(c, cfg)
	// Flags have no source ranges; report them by name.
	if diags := cfg.Validate(); diags.HasErrors() {
		return nil, errors.New("invalid agent settings:\n" + config.FormatDiagnostics(diags))
	}
	if err := cfg.CheckClient(c.Bool("dev")); err != nil {
		return nil, errors.New("invalid agent settings:\n" + err.Error())
	}
	return cfg, nil
}

// tlsFlags applies the -tls-* flags over the config's tls block, making
// one when the config has none.
func tlsFlags(c *cli.Context, cfg *config.Config) {
	files := map[string]func(*config.TLSConfig) *string{
		"tls-cert-file": func(t *config.TLSConfig) *string { return &t.CertFile },
		"tls-key-file":  func(t *config.TLSConfig) *string { return &t.KeyFile },
		"tls-ca-file":   func(t *config.TLSConfig) *string { return &t.CAFile },
	}
	for flag, field := range files {
		if c.IsSet(flag) {
			if cfg.TLS == nil {
				cfg.TLS = &config.TLSConfig{}
			}
			// Relative to where the agent is started, as people type them.
			*field(cfg.TLS) = absPath(c.String(flag))
		}
	}
	if c.IsSet("tls-verify-incoming") || c.IsSet("tls-min-version") {
		if cfg.TLS == nil {
			cfg.TLS = &config.TLSConfig{}
		}
		if c.IsSet("tls-verify-incoming") {
			cfg.TLS.VerifyIncoming = c.Bool("tls-verify-incoming")
		}
		if c.IsSet("tls-min-version") {
			cfg.TLS.MinVersion = c.String("tls-min-version")
		}
	}
}

// serverFlags applies -server, -bootstrap-expect, -retry-join and
// -raft-bind over the config's server block, making one when the config
// has none.
func serverFlags(c *cli.Context, cfg *config.Config) {
	if !c.IsSet("server") && !c.IsSet("bootstrap-expect") && !c.IsSet("retry-join") && !c.IsSet("raft-bind") {
		return
	}
	if cfg.Server == nil {
		cfg.Server = &config.ServerConfig{}
	}
	s := cfg.Server
	if c.IsSet("server") {
		s.Enabled = c.Bool("server")
	}
	if c.IsSet("bootstrap-expect") {
		s.BootstrapExpect = c.Int("bootstrap-expect")
	}
	if c.IsSet("retry-join") {
		s.RetryJoin = c.StringSlice("retry-join")
	}
	if c.IsSet("raft-bind") {
		s.RaftBind = c.String("raft-bind")
	}
}

// clientFlags applies -client and -servers over the config's client
// block, making one when the config has none. -servers adds to the
// block's servers, so that a shared file can list some and a flag more.
func clientFlags(c *cli.Context, cfg *config.Config) {
	if !c.IsSet("client") && !c.IsSet("servers") {
		return
	}
	if cfg.Client == nil {
		cfg.Client = &config.ClientConfig{}
	}
	if c.IsSet("client") {
		on := c.Bool("client")
		cfg.Client.Enabled = &on
	}
	if c.IsSet("servers") {
		cfg.Client.Servers = append(cfg.Client.Servers, c.StringSlice("servers")...)
	}
}
