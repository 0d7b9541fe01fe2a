// Package cli is the hush command line: it parses flags into options and
// calls plain functions that talk to agents through sdk/api.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// Main runs the hush command line with os.Args and returns the exit code.
// SIGINT and SIGTERM end every command promptly (see notifyInterrupt).
func Main(version string) int {
	ctx, stop := notifyInterrupt(selfStopping(os.Args), os.Stderr)
	defer stop()
	return Run(ctx, version, os.Args, os.Stdin, os.Stdout, os.Stderr)
}

// Run runs the command line with args (args[0] is the program name) in the
// process's environment, and returns the exit code; see RunEnv.
func Run(ctx context.Context, version string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunEnv(ctx, version, args, stdin, stdout, stderr, os.LookupEnv)
}

// RunEnv runs the command line with args (args[0] is the program name)
// and returns the exit code. Commands read the environment only through
// env (HUSH_ADDR, HUSH_TOKEN, HUSH_TOKEN_FILE, HUSH_CONFIG, HOME,
// NO_COLOR), so that a program or a test can run them in-process with an
// environment of its own. A command that fails after ctx was cancelled with
// an *interrupted cause exits with the signal's code (130, 143); one that
// finishes anyway, such as `hush run` detaching from its run, exits 0.
func RunEnv(ctx context.Context, version string, args []string, stdin io.Reader, stdout, stderr io.Writer, env fleet.Env) int {
	ui := newUI(ctx, stdin, stdout, stderr, env)
	app := newApp(version, ui)
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err == nil {
		return exitOK
	}
	if intr := interruption(ctx); intr != nil {
		ui.Fail("Interrupted by %s", signalName(intr.sig))
		return intr.exitCode()
	}
	if errors.Is(err, errReported) {
		return exitError
	}
	var usage *usageError
	if errors.As(err, &usage) {
		ui.Fail("%s", usage.msg)
		if usage.help != "" {
			ui.Hint("Run `%s --help` for usage.", usage.help)
		}
		return exitUsage
	}
	ui.Fail("%s", err)
	if apiErr := (*api.Error)(nil); errors.As(err, &apiErr) && apiErr.Code == api.CodeTokenExpired {
		ui.Hint("Your token has expired. Once you have a new one, put it in %s, or in your cluster's token file "+
			"(`hush cluster add NAME --address URL --token-file FILE`).", api.EnvToken)
	}
	return exitError
}

func newApp(version string, ui *UI) *cli.App {
	app := &cli.App{
		Name:    "hush",
		Usage:   "run workloads with your secrets injected, and keep secrets in step across clusters",
		Version: version,
		Reader:  ui.in,
		Writer:  ui.out,
		// Errors are printed once, by Run, with the exit code they deserve.
		ErrWriter:       io.Discard,
		ExitErrHandler:  func(*cli.Context, error) {},
		HideHelpCommand: true,
		Commands: []*cli.Command{
			agentCommand(version, ui),
			createCommand(ui),
			getCommand(ui),
			deleteCommand(ui),
			runCommand(ui),
			logsCommand(ui),
			describeCommand(ui),
			stopCommand(ui),
			imageCommand(ui),
			aclCommand(ui),
			operatorCommand(ui),
			serverCommand(ui),
			nodeCommand(ui),
			clusterCommand(ui),
			syncCommand(ui),
			applyCommand(ui),
			tlsCommand(ui),
			pluginCommand(ui),
			auditCommand(ui),
			versionCommand(version, ui),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return &usageError{msg: fmt.Sprintf("unknown command %q", c.Args().First()), help: "hush"}
			}
			return cli.ShowAppHelp(c)
		},
	}
	app.OnUsageError = onUsageError
	for _, c := range app.Commands {
		setUsageHandlers(c)
	}
	return app
}

// errReported is returned by commands that have printed their failure
// themselves; it exits 1 without another message.
var errReported = errors.New("failure already reported")

// usageError is a mistake in how a command was called; it exits 2.
type usageError struct {
	msg  string
	help string // the command whose --help to point at
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(c *cli.Context, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), help: c.Command.HelpName}
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	help := "hush"
	if c.Command != nil && c.Command.HelpName != "" {
		help = c.Command.HelpName
	}
	return &usageError{msg: err.Error(), help: help}
}

// setUsageHandlers makes every command report flag errors as usage errors,
// and makes a command that only groups others reject what it does not know.
func setUsageHandlers(c *cli.Command) {
	c.OnUsageError = onUsageError
	if len(c.Subcommands) > 0 && c.Action == nil {
		c.Action = func(ctx *cli.Context) error {
			if ctx.Args().Present() {
				return usageErrorf(ctx, "unknown command %q for `%s`", ctx.Args().First(), ctx.Command.HelpName)
			}
			return cli.ShowSubcommandHelp(ctx)
		}
	}
	for _, sub := range c.Subcommands {
		setUsageHandlers(sub)
	}
}

// exactArgs fails with a usage error unless the command got n arguments.
func exactArgs(c *cli.Context, n int, what string) error {
	if got := c.NArg(); got != n {
		return usageErrorf(c, "`%s` takes %s; got %d argument(s)", c.Command.HelpName, what, got)
	}
	return nil
}

func versionCommand(version string, ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of hush",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(ui.out, "hush %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// reorderArgs moves the flags of the command that args name in front of its
// positional arguments, so that `hush delete secret NAME -y` works: the flag
// package that urfave/cli uses stops at the first positional argument.
// Everything after "--" stays positional.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	var flags []cli.Flag
	cmds := app.Commands
	// Walk down the command path: leading words that name subcommands.
	for len(rest) > 0 {
		cmd := findCommand(cmds, rest[0])
		if cmd == nil {
			break
		}
		out = append(out, rest[0])
		rest = rest[1:]
		flags, cmds = cmd.Flags, cmd.Subcommands
	}
	if flags == nil {
		return append(out, rest...)
	}
	var flagArgs, positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue(flags, name) && i+1 < len(rest) {
			i++
			flagArgs = append(flagArgs, rest[i])
		}
	}
	out = append(out, flagArgs...)
	if len(positional) > 0 {
		out = append(out, "--")
	}
	return append(out, positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the named flag needs a value. Unknown flags
// are left for the parser to report.
func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
