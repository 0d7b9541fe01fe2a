package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/urfave/cli/v2"
)

func keyringCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "keyring",
		Usage: "rotate the keys that seal an agent's data (needs a management token)",
		Description: "The keyring's keys seal every secret, run and log the agent keeps. `rotate` makes a\n" +
			"new key, which seals new data at once; the agent then seals its older data again under\n" +
			"it in the background while it serves, and goes on after a restart. An older key that\n" +
			"seals nothing any more is retired, and `prune` removes retired keys from the keyring.",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "list the keyring's keys, their state and how much each seals, never the keys",
			Flags: []cli.Flag{outputFlag(), clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				client, output, err := listClient(c, ui)
				if err != nil {
					return err
				}
				kr, err := client.Keyring(c.Context)
				if err != nil {
					return err
				}
				return printKeyring(ui, output, kr)
			},
		}, {
			Name:  "rotate",
			Usage: "make a new active key and seal older data again under it, in the background",
			Flags: []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				client, err := commandClient(c, ui)
				if err != nil {
					return err
				}
				kr, err := client.RotateKeyring(c.Context)
				if err != nil {
					return err
				}
				for _, k := range kr.Keys {
					if k.State == api.KeyActive {
						ui.Success("Rotated the keyring: key %d seals new data", k.ID)
					}
				}
				ui.Hint("Older data is sealed again under it in the background; `hush operator keyring list` shows how far.")
				return nil
			},
		}, {
			Name:  "prune",
			Usage: "remove retired keys, which seal nothing any more, from the keyring",
			Flags: []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				client, err := commandClient(c, ui)
				if err != nil {
					return err
				}
				ids, err := client.PruneKeyring(c.Context)
				if err != nil {
					return err
				}
				names := make([]string, len(ids))
				for i, id := range ids {
					names[i] = strconv.FormatUint(uint64(id), 10)
				}
				ui.Success("Pruned key %s from the keyring", strings.Join(names, ", "))
				return nil
			},
		}},
	}
}

func printKeyring(ui *UI, output string, kr *api.Keyring) error {
	return listing[*api.KeyringKey]{
		empty:  "The keyring holds no keys.",
		header: []string{"KEY", "STATE", "CREATED", "RETIRED", "SEALS"},
		name:   func(k *api.KeyringKey) string { return strconv.FormatUint(uint64(k.ID), 10) },
		row: func(k *api.KeyringKey) []string {
			retired := "-"
			if k.RetiredAt != nil {
				retired = k.RetiredAt.Local().Format(time.DateTime)
			}
			seals := fmt.Sprintf("%d", k.Records)
			if k.Unreadable > 0 {
				seals += fmt.Sprintf(" (%d damaged)", k.Unreadable)
			}
			return []string{strconv.FormatUint(uint64(k.ID), 10), k.State, k.CreatedAt.Local().Format(time.DateTime), retired, seals}
		},
	}.print(ui, output, kr.Keys)
}
