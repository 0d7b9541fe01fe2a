package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/hush-sh/hush/sdk/spec"
	"github.com/urfave/cli/v2"
)

// completeName is the hidden command the completion scripts call with the
// words typed so far, the program's name first and the word being
// completed last (perhaps empty). It prints the candidates, one a line;
// when it prints none, the scripts fall back to completing file names.
const completeName = "__complete"

// completeTimeout bounds asking the agents for secret and run names: a
// completion that waits is worse than none.
const completeTimeout = 2 * time.Second

// Completion scripts, one per shell. Each only passes the words to
// `hush __complete`, so every shell completes the same things.
var completionScripts = map[string]string{
	"bash": `# bash completion for hush. Load it with: source <(hush completion bash)
_hush_complete() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" ` + completeName + ` "${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null))
}
complete -o default -F _hush_complete hush
`,
	"zsh": `#compdef hush
# zsh completion for hush. Load it with: source <(hush completion zsh)
_hush() {
    local -a candidates
    candidates=("${(@f)$(${words[1]} ` + completeName + ` "${(@)words[1,CURRENT]}" 2>/dev/null)}")
    if [[ -n ${candidates[1]} ]]; then
        compadd -Q -- "${candidates[@]}"
    else
        _files
    fi
}
if [[ $funcstack[1] == _hush ]]; then
    _hush "$@"
else
    compdef _hush hush
fi
`,
	"fish": `# fish completion for hush. Load it with: hush completion fish | source
function __hush_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l candidates ($words[1] ` + completeName + ` $words "$current" 2>/dev/null)
    if test (count $candidates) -eq 0
        __fish_complete_path "$current"
    else
        printf '%s\n' $candidates
    end
end
complete -c hush -f -a '(__hush_complete)'
`,
}

// completionShells are the shells `hush completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (" + strings.Join(completionShells, ", ") + ")",
		ArgsUsage: "SHELL",
		Description: "Completes commands, flags, and the names of your secrets and runs, which it asks\n" +
			"your clusters for. Load it in the shell's start-up file:\n\n" +
			"  bash: source <(hush completion bash)   (in ~/.bashrc)\n" +
			"  zsh:  source <(hush completion zsh)    (in ~/.zshrc, after compinit)\n" +
			"  fish: hush completion fish | source    (in ~/.config/fish/config.fish)",
		Action: func(c *cli.Context) error {
			script, ok := completionScripts[c.Args().First()]
			if c.NArg() != 1 || !ok {
				return usageErrorf(c, "`hush completion` takes one shell: one of %s", strings.Join(completionShells, ", "))
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

func completeCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:            completeName,
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if len(words) < 2 {
				return nil // nothing typed after the program's name
			}
			for _, s := range complete(c.Context, ui, c.App, words[1:]) {
				fmt.Fprintln(ui.out, s)
			}
			return nil
		},
	}
}

// dynamicArgs are the commands whose arguments name secrets or runs, by
// their path of names; many is whether they take more than one.
var dynamicArgs = map[string]struct {
	kind string
	many bool
}{
	"delete secret":   {"secrets", true},
	"describe secret": {"secrets", false},
	"logs":            {"runs", false},
	"describe run":    {"runs", false},
	"stop run":        {"runs", true},
	"delete run":      {"runs", true},
}

// complete returns the candidates for the last of words (the words after
// the program's name): subcommands, flags, values of -o, or the names of
// the user's secrets or runs.
func complete(ctx context.Context, ui *UI, app *cli.App, words []string) []string {
	current, typed := words[len(words)-1], words[:len(words)-1]
	cmds, flags := app.Commands, app.Flags
	var path, args []string
	for i := 0; i < len(typed); i++ {
		w := typed[i]
		switch cmd := findCommand(cmds, w); {
		case w == "--":
			args = append(args, typed[i+1:]...)
			i = len(typed)
		case len(w) > 1 && w[0] == '-':
			name := strings.TrimLeft(w, "-")
			if !strings.Contains(name, "=") && takesValue(flags, name) {
				if i == len(typed)-1 {
					return flagValues(name, current)
				}
				i++
			}
		case cmd != nil && len(args) == 0 && !cmd.Hidden:
			path = append(path, cmd.Name)
			cmds, flags = cmd.Subcommands, cmd.Flags
		default:
			args = append(args, w)
		}
	}
	if slices.Equal(path, []string{"help"}) {
		// `hush help` takes a path of commands, as typed after hush.
		cmds = app.Commands
		for _, a := range args {
			cmd := findCommand(cmds, a)
			if cmd == nil {
				return nil
			}
			cmds = cmd.Subcommands
		}
		args = nil
	}
	switch {
	case strings.HasPrefix(current, "-"):
		return matching(flagNames(flags), current)
	case len(cmds) > 0 && len(args) == 0:
		var names []string
		for _, c := range cmds {
			if !c.Hidden {
				names = append(names, c.Name)
			}
		}
		return matching(names, current)
	}
	dyn, ok := dynamicArgs[strings.Join(path, " ")]
	if !ok || (!dyn.many && len(args) > 0) {
		return nil
	}
	var names []string
	for _, n := range remoteNames(ctx, ui, dyn.kind) {
		if !slices.Contains(args, n) {
			names = append(names, n)
		}
	}
	return matching(names, current)
}

// flagValues completes the value of the flag name: only -o has a fixed set;
// for the others (mostly files) the scripts complete file names.
func flagValues(name, current string) []string {
	if name == "o" || name == "output" {
		return matching(outputFormats, current)
	}
	return nil
}

// flagNames are the spellings of flags as typed, and --help and -h, which
// urfave adds to every command.
func flagNames(flags []cli.Flag) []string {
	names := []string{"--help", "-h"}
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// remoteNames asks every cluster for the names of the user's secrets or
// runs. Any failure means fewer names, never a message: the completion
// runs at every press of Tab.
func remoteNames(ctx context.Context, ui *UI, kind string) []string {
	f, err := ui.loadFleet()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) ([]string, error) {
		var names []string
		switch kind {
		case "secrets":
			secrets, err := c.Client.ListSecrets(ctx, "")
			for _, s := range secrets {
				names = append(names, s.Name)
			}
			return names, err
		default:
			runs, err := c.Client.ListRuns(ctx)
			for _, r := range runs {
				names = append(names, r.Name)
			}
			return names, err
		}
	})
	var names []string
	for _, r := range results {
		names = append(names, r.Value...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// matching returns the candidates that start with prefix.
func matching(candidates []string, prefix string) []string {
	var out []string
	for _, c := range candidates {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// suggestCommand returns the name of the command of cmds that name is
// likely a typo of: one that name begins, or one of whose names is at most
// two edits away. It returns "" when none is.
func suggestCommand(cmds []*cli.Command, name string) string {
	best, bestDist := "", 3
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			d := spec.EditDistance(name, n)
			if name != "" && strings.HasPrefix(n, name) {
				d = 0
			}
			if d < bestDist {
				best, bestDist = c.Name, d
			}
		}
	}
	return best
}
