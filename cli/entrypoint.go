package cli

import (
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/urfave/cli/v2"
)

// entrypointCommand is what the agent starts inside every run: it loads
// the secret variables from the run's tmpfs and execs the command. It is
// not for people, so it is hidden.
func entrypointCommand() *cli.Command {
	return &cli.Command{
		Name:   "_entrypoint",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "env-file", Required: true},
		},
		Action: func(c *cli.Context) error {
			return runtime.Entrypoint(c.String("env-file"), c.Args().Slice())
		},
	}
}
