package runtime

import (
	"flag"
	"fmt"
	"io"
)

// EntrypointCommand is the hidden hush subcommand that starts every
// workload: `hush _entrypoint --env-file F [sandbox flags] -- argv...`.
// The hush binary dispatches it before it sets up its command line, which
// the entrypoint does not need.
const EntrypointCommand = "_entrypoint"

// EntrypointMain runs the entrypoint with the arguments that follow
// EntrypointCommand and returns the exit code when it could not exec the
// workload. On the sandboxed exec runtime (--uid given) it first hides the
// state dir and takes on the run's user.
func EntrypointMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(EntrypointCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", "", "the run's file of secret variables")
	var sb Sandbox
	fs.StringVar(&sb.StateDir, "state-dir", "", "the agent's state dir, hidden from the workload")
	fs.StringVar(&sb.RunDir, "run-dir", "", "the run's tmpfs, inside the state dir")
	uid := fs.Uint("uid", 0, "the run's user")
	gid := fs.Uint("gid", 0, "the run's group")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *envFile == "" {
		fmt.Fprintln(stderr, "hush _entrypoint: --env-file is required")
		return 2
	}
	var err error
	if *uid == 0 {
		err = Entrypoint(*envFile, fs.Args())
	} else {
		sb.UID, sb.GID = uint32(*uid), uint32(*gid)
		err = SandboxedEntrypoint(*envFile, sb, fs.Args())
	}
	// Exec returned: the workload did not start.
	fmt.Fprintf(stderr, "hush _entrypoint: %v\n", err)
	return 127
}
