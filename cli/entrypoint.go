package cli

import (
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/urfave/cli/v2"
)

// entrypointCommand is what the agent starts inside every run: it loads
// the secret variables from the run's tmpfs and execs the command. On a
// sandboxed exec runtime it first hides the state dir and takes on the
// run's user (--state-dir, --run-dir, --uid, --gid). It is not for people,
// so it is hidden.
func entrypointCommand() *cli.Command {
	return &cli.Command{
		Name:   "_entrypoint",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "env-file", Required: true},
			&cli.StringFlag{Name: "state-dir"},
			&cli.StringFlag{Name: "run-dir"},
			&cli.UintFlag{Name: "uid"},
			&cli.UintFlag{Name: "gid"},
		},
		Action: func(c *cli.Context) error {
			if !c.IsSet("uid") {
				return runtime.Entrypoint(c.String("env-file"), c.Args().Slice())
			}
			return runtime.SandboxedEntrypoint(c.String("env-file"), runtime.Sandbox{
				StateDir: c.String("state-dir"), RunDir: c.String("run-dir"),
				UID: uint32(c.Uint("uid")), GID: uint32(c.Uint("gid")),
			}, c.Args().Slice())
		},
	}
}
