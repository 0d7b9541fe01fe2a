package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

func snapshotCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save and restore the cluster's whole state (needs a management token)",
		Description: "A snapshot holds every user's secrets, tokens and runs, as sealed records, and the\n" +
			"keyring that sealed them, and the file is sealed again as a whole: it opens only in a\n" +
			"cluster whose servers have the seal key of the cluster that saved it, and a file that\n" +
			"was altered or cut short is refused. A restore replaces the state of every server.",
		Subcommands: []*cli.Command{{
			Name:      "save",
			Usage:     "write a sealed snapshot of the cluster's state to FILE (mode 0600)",
			ArgsUsage: "FILE",
			Flags:     []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "the FILE to write the snapshot to"); err != nil {
					return err
				}
				client, err := targetClient(c, ui)
				if err != nil {
					return err
				}
				return saveSnapshot(c.Context, client, c.Args().First(), ui)
			},
		}, {
			Name:  "restore",
			Usage: "replace the cluster's state with the snapshot in FILE",
			Description: "Replaces, without asking, every secret, token and run of the cluster with the\n" +
				"snapshot's, on every server, and says what it replaced. Save a snapshot first if the\n" +
				"current state may be wanted again.",
			ArgsUsage: "FILE",
			Flags:     []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "the snapshot FILE to restore"); err != nil {
					return err
				}
				client, err := targetClient(c, ui)
				if err != nil {
					return err
				}
				return restoreSnapshot(c.Context, client, c.Args().First(), ui)
			},
		}},
	}
}

// saveSnapshot writes the snapshot next to path and renames it into place
// once whole, so that path never holds part of one.
func saveSnapshot(ctx context.Context, client *api.Client, path string, ui *UI) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create snapshot file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes it 0600: the file holds sealed secrets.
	n, err := client.SaveSnapshot(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	ui.Success("Saved a snapshot of the cluster to %s (%s)", path, byteSize(n))
	ui.Hint("It opens only in a cluster with this cluster's seal key; keep that key as safe as the file.")
	return nil
}

func restoreSnapshot(ctx context.Context, client *api.Client, path string, ui *UI) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	res, err := client.RestoreSnapshot(ctx, f)
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w", path, err)
	}
	ui.Success("Restored the snapshot saved at %s: %s", res.SavedAt.Local().Format("2006-01-02 15:04:05 MST"), stateCounts(res.Restored))
	ui.Info("It replaced the cluster's state at index %d: %s", res.Replaced.Index, stateCounts(res.Replaced))
	return nil
}

func stateCounts(s api.SnapshotState) string {
	return fmt.Sprintf("%d secrets, %d tokens, %d runs", s.Secrets, s.Tokens, s.Runs)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
