package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func auditCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "work with the agent's audit log",
		Subcommands: []*cli.Command{{
			Name:      "hash",
			Usage:     "print the audit log's hash of VALUE (a token, say), to look for it in the log (management tokens)",
			ArgsUsage: "VALUE",
			Flags:     []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usageErrorf(c, "`hush audit hash` takes one VALUE")
				}
				client, err := targetClient(c, ui)
				if err != nil {
					return err
				}
				hash, err := client.AuditHash(c.Context, c.Args().First())
				if err != nil {
					return err
				}
				fmt.Fprintln(ui.out, hash)
				return nil
			},
		}},
	}
}
