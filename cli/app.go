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
	"slices"
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
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
		// Our own help command (helpCommand) takes a command path; urfave's
		// takes one word, and adds --help only when it adds its own command.
		// Our own --version prints what `hush version` does.
		HideHelpCommand: true,
		HideVersion:     true,
		Flags: []cli.Flag{
			cli.HelpFlag,
			&cli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version", DisableDefaultText: true},
		},
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
			helpCommand(version, ui),
			completionCommand(),
			completeCommand(ui),
		},
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				printVersion(ui, version)
				return nil
			}
			if c.Args().Present() {
				return unknownCommand(c.App.Commands, c.Args().First(), "hush")
			}
			return missingCommand(ui, c, nil)
		},
	}
	app.OnUsageError = onUsageError
	for _, c := range app.Commands {
		setUsageHandlers(c, ui)
	}
	return app
}

// helpCommand is `hush help [COMMAND...]`: the same help as
// `hush COMMAND... --help`, which it runs on a fresh app so that the two
// cannot differ.
func helpCommand(version string, ui *UI) *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show help for hush or for a command",
		ArgsUsage: "[COMMAND...]",
		// urfave answers --help on a command named help with the app's
		// help, so this one answers it itself.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			path := c.Args().Slice()
			if slices.ContainsFunc(path, func(a string) bool { return a == "-h" || a == "--help" }) {
				cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
				return nil
			}
			cmds, where := c.App.Commands, "hush"
			for _, name := range path {
				cmd := findCommand(cmds, name)
				if cmd == nil || cmd.Hidden {
					return unknownCommand(cmds, name, where)
				}
				cmds, where = cmd.Subcommands, where+" "+cmd.Name
			}
			args := append(append([]string{"hush"}, path...), "--help")
			return newApp(version, ui).RunContext(c.Context, args)
		},
	}
}

// unknownCommand is the usage error for a command name that is not one of
// cmds, the commands of parent (such as "hush get"), with the likeliest
// meant name when one is close.
func unknownCommand(cmds []*cli.Command, name, parent string) error {
	msg := fmt.Sprintf("unknown command %q for %q%s", name, parent, didYouMean(cmds, name))
	return &usageError{msg: msg, help: parent}
}

// didYouMean is " (did you mean "NAME"?)" for the command of cmds that name
// is likely a typo of (see suggestCommand), or "" when none is.
func didYouMean(cmds []*cli.Command, name string) string {
	if s := suggestCommand(cmds, name); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// missingCommand prints the help of a command that groups others, given
// none, to stderr: the list of what it takes is the most useful answer,
// but it is still a mistake, so it exits 2. action, if not nil, is the
// command's own answer for a missing argument.
func missingCommand(ui *UI, c *cli.Context, action cli.ActionFunc) error {
	name, templ := "hush", cli.AppHelpTemplate
	var data any = c.App
	if c.Command != nil && c.Command.HelpName != "" && c.Command.HelpName != c.App.Name {
		name, templ, data = c.Command.HelpName, cli.SubcommandHelpTemplate, c.Command
		if c.Command.CustomHelpTemplate != "" {
			templ = c.Command.CustomHelpTemplate
		}
	}
	cli.HelpPrinter(ui.err, templ, data)
	if action != nil {
		err := action(c)
		if usage := (*usageError)(nil); errors.As(err, &usage) {
			usage.help = "" // the help is on the screen already
		}
		return err
	}
	return &usageError{msg: fmt.Sprintf("%q needs a command: see the list above", name)}
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
// makes a command that groups others reject what it does not know and
// show its help when given nothing (missingCommand), and hides urfave's
// per-command `help` subcommands: `hush help COMMAND...` and --help are
// the ways to ask, and a leaf's hidden one would take `hush delete secret
// help` as a request for help rather than for the secret named help.
func setUsageHandlers(c *cli.Command, ui *UI) {
	c.OnUsageError = onUsageError
	c.HideHelpCommand = true
	if len(c.Subcommands) == 0 {
		// Without its help subcommand, urfave would render a leaf's --help
		// with the template of commands that have subcommands.
		if c.CustomHelpTemplate == "" {
			c.CustomHelpTemplate = cli.CommandHelpTemplate
		}
		return
	}
	own := c.Action
	c.Action = func(ctx *cli.Context) error {
		if !ctx.Args().Present() {
			return missingCommand(ui, ctx, own)
		}
		if own != nil {
			return own(ctx)
		}
		return unknownCommand(ctx.Command.Subcommands, ctx.Args().First(), ctx.Command.HelpName)
	}
	for _, sub := range c.Subcommands {
		setUsageHandlers(sub, ui)
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
			printVersion(ui, version)
			return nil
		},
	}
}

// printVersion is the answer of both `hush version` and `hush --version`.
func printVersion(ui *UI, version string) {
	fmt.Fprintf(ui.out, "hush %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
