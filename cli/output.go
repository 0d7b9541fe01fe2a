package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hush-sh/hush/sdk/fleet"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"
)

// UI is the one place, set up by Run, that commands take what they work
// with from: stdin, stdout and stderr, the environment, and the clusters
// (loaded from that environment on first use, see loadFleet). It writes
// what people read: status lines with DESIGN's symbols (✔ done, i info,
// ! warning, ✗ failure), coloured only on a terminal and never with
// NO_COLOR, and reads their answers. Reads return when ctx ends, so that
// Ctrl+C ends a command that waits for stdin or for an answer.
type UI struct {
	ctx      context.Context
	in       io.Reader
	out, err io.Writer
	// env is the environment commands read, instead of the process's.
	env    fleet.Env
	fleets fleetLoader
	color  bool
	lines  *bufio.Reader
}

func newUI(ctx context.Context, in io.Reader, out, errw io.Writer, env fleet.Env) *UI {
	return &UI{ctx: ctx, in: in, out: out, err: errw, env: env, color: isTerminal(out) && env.Get("NO_COLOR") == ""}
}

const (
	green  = "\033[32m"
	blue   = "\033[34m"
	yellow = "\033[33m"
	red    = "\033[31m"
	reset  = "\033[0m"
)

func (u *UI) status(w io.Writer, symbol, color, format string, args []any) {
	msg := fmt.Sprintf(format, args...)
	// Continuation lines line up under the message.
	msg = strings.ReplaceAll(msg, "\n", "\n   ")
	if u.color {
		symbol = color + symbol + reset
	}
	fmt.Fprintf(w, "%s  %s\n", symbol, msg)
}

// Success prints a ✔ line to stdout.
func (u *UI) Success(format string, args ...any) { u.status(u.out, "✔", green, format, args) }

// Info prints an i line to stdout.
func (u *UI) Info(format string, args ...any) { u.status(u.out, "i", blue, format, args) }

// Warn prints a ! line to stderr.
func (u *UI) Warn(format string, args ...any) { u.status(u.err, "!", yellow, format, args) }

// Fail prints a ✗ line to stderr.
func (u *UI) Fail(format string, args ...any) { u.status(u.err, "✗", red, format, args) }

// Hint prints an indented line under a failure, to stderr.
func (u *UI) Hint(format string, args ...any) { fmt.Fprintf(u.err, "   "+format+"\n", args...) }

// interactive reports whether both ends are a person at a terminal.
func (u *UI) interactive() bool { return isTerminal(u.in) && isTerminal(u.err) }

// Confirm asks a yes/no question on a terminal; anything but y or yes is
// no, end of input (Ctrl+D) included. It fails when the command is
// interrupted while it waits, or when stdin fails. What follows starts on
// a line of its own: the terminal echoes the Enter of an answer, but not
// a Ctrl+C or Ctrl+D.
func (u *UI) Confirm(question string) (bool, error) {
	fmt.Fprintf(u.err, "?  %s [y/N] ", question)
	line, err := u.reader().ReadString('\n')
	if err := u.ctx.Err(); err != nil {
		fmt.Fprintln(u.err)
		return false, err
	}
	if err == io.EOF {
		fmt.Fprintln(u.err)
	} else if err != nil {
		return false, fmt.Errorf("read answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// ReadSecret prompts on a terminal for a value without echoing it. The
// terminal's echo comes back when it returns, also when the command is
// interrupted while it waits.
func (u *UI) ReadSecret(prompt string) ([]byte, error) {
	restore, err := noEcho(int(u.in.(*os.File).Fd()))
	if err != nil {
		return nil, fmt.Errorf("turn off the terminal's echo: %w", err)
	}
	defer restore()
	fmt.Fprintf(u.err, "?  %s: ", prompt)
	defer fmt.Fprintln(u.err)
	line, err := u.reader().ReadBytes('\n')
	if err != nil && (err != io.EOF || len(line) == 0) {
		return nil, err
	}
	return trimNewline(line), nil
}

// ReadAll reads the whole of stdin, for values given as "-".
func (u *UI) ReadAll() ([]byte, error) { return io.ReadAll(u.reader()) }

func (u *UI) reader() *bufio.Reader {
	if u.lines == nil {
		u.lines = bufio.NewReader(&ctxReader{ctx: u.ctx, r: u.in})
	}
	return u.lines
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Output formats for -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
	formatName  = "name"
)

var outputFormats = []string{formatTable, formatJSON, formatYAML, formatName}

// table prints rows under a header, in aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printStructured prints v as JSON or YAML.
func printStructured(w io.Writer, format string, v any) error {
	if format == formatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	node, err := yamlNode(v)
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return err
	}
	return enc.Close()
}

// yamlNode renders v as YAML through its JSON form, so that the wire types
// of sdk/api need no YAML of their own: keys keep their JSON names and
// order, times print plain, and what JSON leaves null is left out.
func yamlNode(v any) (*yaml.Node, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	blockStyle(&doc)
	return &doc, nil
}

// blockStyle turns the flow style that JSON parses into into YAML's block
// style, in place. The times of the wire types (fields named time or
// ending in _at) print as YAML times; any other string stays a string,
// whatever it looks like.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if value.Tag == "!!null" {
				continue
			}
			if value.Tag == "!!str" && (key.Value == "time" || strings.HasSuffix(key.Value, "_at")) {
				if _, err := time.Parse(time.RFC3339Nano, value.Value); err == nil {
					value.Tag = "!!timestamp"
				}
			}
			kept = append(kept, key, value)
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// listing says how a get command shows its resources.
type listing[T any] struct {
	// empty is the info line shown instead of an empty table.
	empty  string
	header []string
	name   func(T) string
	row    func(T) []string
}

// print shows items in the -o format: JSON or YAML as they are, one name
// per line, or a table.
func (l listing[T]) print(ui *UI, format string, items []T) error {
	switch format {
	case formatJSON, formatYAML:
		return printStructured(ui.out, format, items)
	case formatName:
		for _, it := range items {
			fmt.Fprintln(ui.out, l.name(it))
		}
		return nil
	}
	if len(items) == 0 {
		ui.Info("%s", l.empty)
		return nil
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = l.row(it)
	}
	return table(ui.out, l.header, rows)
}
