package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/seal"
	"github.com/hush-sh/hush/agent/store"
	"github.com/urfave/cli/v2"
)

func operatorCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "operator",
		Usage: "look after an agent's data dir, on the agent's host",
		Subcommands: []*cli.Command{{
			Name:  "root-token",
			Usage: "manage the agent's root token",
			Subcommands: []*cli.Command{{
				Name:  "regenerate",
				Usage: "mint a new root token into DIR/root.token, with the agent stopped",
				Description: "Works offline on the agent's host: access to the data dir proves the right to a\n" +
					"management token, as unseal keys do for Vault's generate-root. The agent must be\n" +
					"stopped, since it holds the store. Older management tokens stay valid: list them with\n" +
					"`hush acl token list` and revoke the ones you no longer trust with `hush acl token revoke`.\n" +
					"Give the agent's -config files too when its seal is not the default (seal \"file\" with\n" +
					"its key at DIR.seal.key): the keyring opens only with its seal.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Usage: "the agent's data `DIR`", Required: true},
					&cli.StringSliceFlag{Name: "config", Usage: "the agent's HCL config `FILE`, for its seal block (repeatable)"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usageErrorf(c, "`hush operator root-token regenerate` takes no arguments; got %q", c.Args().First())
					}
					return regenerateRootToken(c.String("data-dir"), c.StringSlice("config"), ui)
				},
			}},
		}, keyringCommand(ui), raftCommand(ui), snapshotCommand(ui)},
	}
}

// regenerateRootToken opens the store in dataDir itself, with the seal
// that the agent's config files give (or the default one), mints a new
// management token into its root.token and says where, never what, it is.
func regenerateRootToken(dataDir string, configFiles []string, ui *UI) error {
	if _, err := os.Stat(filepath.Join(dataDir, store.DBFile)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s holds no agent store (%s): give the agent's -data-dir", dataDir, store.DBFile)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db")); err == nil {
		// A token written here, outside the cluster's log, would be known
		// to this server alone, and lost at its next snapshot install.
		return fmt.Errorf("%s is the data dir of a server of a cluster: a token made offline would be known to this server alone. "+
			"Use the cluster's root token: the root.token file that the first server wrote into its data dir", dataDir)
	}
	cfg, diags := config.LoadFiles(configFiles...)
	if diags.HasErrors() {
		return fmt.Errorf("invalid agent config:\n%s", config.FormatDiagnostics(diags))
	}
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	cfg.DataDir = dataDir
	logger := hclog.New(&hclog.LoggerOptions{Name: "store", Level: hclog.Warn, Output: ui.err})
	// A plain keyring stays plain unless the config names a seal: the
	// agent wraps it at its next start, and a dev agent's never is.
	var opts []store.Option
	if cfg.Seal != nil || store.KeyringSeal(dataDir) != "" {
		sl, err := seal.New(cfg.SealFor(false), dataDir, logger)
		if err != nil {
			return err
		}
		opts = append(opts, store.WithSeal(sl))
	}
	st, err := store.Open(dataDir, logger, opts...)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("an agent is running on %s and holds its store: stop the agent first, then run this again", dataDir)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	path, err := st.RegenerateRootToken()
	if err != nil {
		return err
	}
	ui.Success("Wrote a new root token to %s", path)
	ui.Hint("Start the agent and use it as HUSH_TOKEN; delete the file once the token is stored elsewhere.")
	return nil
}
