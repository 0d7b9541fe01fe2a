package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/spec"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func runCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "submit a run from a spec file (YAML or HCL) and follow its logs",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the run spec `FILE` (.yaml, .yml or .hcl)"},
			&cli.BoolFlag{Name: "follow", Value: true, Usage: "wait for the run to start and follow its logs"},
			&cli.BoolFlag{Name: "no-follow", Usage: "submit the run and return"},
			&cli.StringFlag{Name: "name", Usage: "run `NAME` instead of the spec's"},
			&cli.StringFlag{Name: "image", Usage: "`IMAGE` instead of the spec's"},
			&cli.IntFlag{Name: "gpus", Usage: "`N` GPUs instead of the spec's"},
			&cli.StringFlag{Name: "cluster", Usage: "the `CLUSTER` to run on (default: the spec's, or the default cluster)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush run` takes no arguments; got %q (give the spec with -f FILE)", c.Args().First())
			}
			if c.String("file") == "" {
				return usageErrorf(c, "missing -f FILE: give the run spec, such as examples/hello-secret-user.yaml")
			}
			s, warnings, err := spec.ParseFile(c.String("file"))
			for _, w := range warnings {
				ui.Warn("%s", w)
			}
			if err != nil {
				return err
			}
			req := s.Request()
			if c.IsSet("name") {
				req.Name = c.String("name")
			}
			if c.IsSet("image") {
				req.Image = c.String("image")
			}
			if c.IsSet("gpus") {
				req.GPUs = c.Int("gpus")
			}
			cluster := s.Cluster
			if c.IsSet("cluster") {
				cluster = c.String("cluster")
			}
			f, err := ui.loadFleet()
			if err != nil {
				return err
			}
			client, err := f.Target(cluster)
			if err != nil {
				return err
			}
			if !f.Direct {
				cluster = "" // chosen by name in the config; the agent's own name may differ
			}
			return submitRun(c.Context, client, &runOptions{
				Request: req,
				Cluster: cluster,
				Follow:  c.Bool("follow") && !c.Bool("no-follow"),
				UI:      ui,
			})
		},
	}
}

type runOptions struct {
	Request *api.CreateRunRequest
	Cluster string
	Follow  bool
	UI      *UI
}

func submitRun(ctx context.Context, client *api.Client, opts *runOptions) error {
	ui := opts.UI
	if opts.Cluster != "" {
		self, err := client.Self(ctx)
		if err != nil {
			return err
		}
		if self.Cluster != opts.Cluster {
			return fmt.Errorf("the run asks for cluster %s, but %s is agent %s of cluster %s: point %s at an agent of %s, or drop the cluster",
				opts.Cluster, api.EnvAddr, self.Node, self.Cluster, api.EnvAddr, opts.Cluster)
		}
	}
	run, err := client.CreateRun(ctx, opts.Request)
	if err != nil {
		return err
	}
	if !opts.Follow {
		ui.Success("Run %s submitted", run.Name)
		ui.Info("Follow it with `hush logs %s -f`; see its state with `hush describe run %s`.", run.Name, run.Name)
		return nil
	}
	ui.Info("Run %s submitted. Waiting for it to start...", run.Name)
	ui.Info("You can press Ctrl+C to quit and follow your run manually.")

	run, err = waitForStart(ctx, client, run, newStatusLine(ui, isTerminal(ui.out)))
	if ctx.Err() != nil {
		return detach(ui, run.Name)
	}
	if err != nil {
		return err
	}
	if run.Status == api.RunFailed && run.StartedAt == nil {
		ui.Fail("Run %s failed to start: %s", run.Name, run.Error)
		return errReported
	}
	ui.Success("Run %s started", run.Name)
	ui.Info("Following run logs. Press Ctrl+C to quit.")
	fmt.Fprintln(ui.out)

	logs, err := client.RunLogs(ctx, run.ID, api.LogsOptions{Follow: true, Tail: -1})
	if err != nil {
		return err
	}
	_, err = io.Copy(ui.out, logs)
	logs.Close()
	if ctx.Err() != nil {
		return detach(ui, run.Name)
	}
	if err != nil {
		return lostAgent(ui, run.Name, fmt.Errorf("follow logs: %w", err))
	}
	// The stream ends when the run does; its final state follows at once.
	// An index past any run's events asks for the run once it has ended:
	// one request, where waiting for each new event took one per event.
	for !run.Status.Done() {
		next, err := client.WatchRun(ctx, run.ID, untilEnded, watchWait)
		if err != nil {
			return lostAgent(ui, run.Name, err)
		}
		run = next
	}
	return reportEnd(ui, run)
}

// lostAgent reports err, and, when it is that the agent went away (it
// stopped or restarted, as for an upgrade), that the run goes on without
// the agent and how to follow it again.
func lostAgent(ui *UI, name string, err error) error {
	var uerr *url.Error
	if !errors.As(err, &uerr) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	fmt.Fprintln(ui.out)
	ui.Fail("Lost the agent while following run %s: %v", name, err)
	ui.Info("The run goes on without the agent, which adopts it when it starts again. Follow it then with `hush logs %s -f`.", name)
	return errReported
}

// watchWait bounds each blocking query on a run.
const watchWait = 30 * time.Second

// untilEnded is an events index that no run reaches: a blocking query
// with it answers once the run has ended.
const untilEnded = math.MaxInt32

// waitForStart watches the run until it runs or ends, showing its events
// of progress (waits for room, image pulls), those the submit's answer
// already holds included: on a terminal the latest on one status line,
// elsewhere each as a line.
func waitForStart(ctx context.Context, client *api.Client, run *api.Run, line *statusLine) (*api.Run, error) {
	defer line.end()
	shown := 0
	for {
		for _, e := range run.Events[min(shown, len(run.Events)):] {
			switch e.Type {
			case "warning":
				line.keep(capitalize(e.Message))
			case "image", "runtime", "waiting", "admitted":
				// Waits for room and for an image are the long ones.
				line.show(capitalize(e.Message))
			}
		}
		shown = len(run.Events)
		if run.Status != api.RunPending && run.Status != api.RunStarting {
			return run, nil
		}
		next, err := client.WatchRun(ctx, run.ID, shown, watchWait)
		if err != nil {
			return run, err
		}
		run = next
	}
}

// statusLine shows what a wait is at. On a terminal each message rewrites
// one line, so that a long pull's progress takes one line, not hundreds;
// elsewhere (a log, a pipe) each message is a line of its own, as a
// terminal's rewriting would be noise there. A message the same as the
// last is not shown again.
type statusLine struct {
	ui    *UI
	tty   bool
	width int    // the terminal's width in columns, 0 if not known
	open  bool   // a status line is on the screen, without its newline
	last  string // the last message shown
}

func newStatusLine(ui *UI, tty bool) *statusLine {
	l := &statusLine{ui: ui, tty: tty}
	if f, ok := ui.out.(*os.File); ok && tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			l.width = w
		}
	}
	return l
}

// show shows msg as the wait's latest status.
func (l *statusLine) show(msg string) {
	if msg == l.last {
		return
	}
	l.last = msg
	if !l.tty {
		l.ui.Info("%s", msg)
		return
	}
	// A line longer than the terminal would wrap, or one with a newline
	// break, and \r would then rewrite only its last row: make it one
	// row that fits.
	line := "i  " + strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' ' // a tab, \r or newline would break the one row
		}
		return r
	}, msg)
	if l.width > 1 {
		if r := []rune(line); len(r) > l.width-1 {
			line = string(r[:l.width-2]) + "…"
		}
	}
	if l.ui.color {
		line = blue + "i" + reset + line[1:]
	}
	fmt.Fprintf(l.ui.out, "\r\033[K%s", line)
	l.open = true
}

// keep shows msg as a line that stays (a warning), below which the status
// line goes on.
func (l *statusLine) keep(msg string) {
	l.end()
	l.last = ""
	l.ui.Info("%s", msg)
}

// end leaves the status line shown on the screen, as a line of its own.
func (l *statusLine) end() {
	if l.open {
		fmt.Fprintln(l.ui.out)
		l.open = false
	}
}

func reportEnd(ui *UI, run *api.Run) error {
	fmt.Fprintln(ui.out)
	switch run.Status {
	case api.RunCompleted:
		ui.Success("Run %s completed", run.Name)
		return nil
	case api.RunStopped:
		ui.Warn("Run %s was stopped", run.Name)
	case api.RunLost:
		ui.Fail("Run %s was lost: %s", run.Name, run.Error)
	default:
		ui.Fail("Run %s failed: %s", run.Name, run.Error)
	}
	return errReported
}

func detach(ui *UI, name string) error {
	fmt.Fprintln(ui.out)
	ui.Info("Stopped following run %s; it goes on. Follow it again with `hush logs %s -f`.", name, name)
	return nil
}

// capitalize starts an agent's event message with a capital letter, as the
// CLI's own lines do.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
