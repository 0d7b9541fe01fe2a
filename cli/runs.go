package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/fleet"
	"github.com/hush-sh/hush/sdk/userfile"
	"github.com/urfave/cli/v2"
)

func getRunsCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:    "runs",
		Aliases: []string{"run"},
		Usage:   "list your runs on every cluster",
		Flags:   []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush get runs` takes no arguments; got %q", c.Args().First())
			}
			if err := checkOutput(c, c.String("output")); err != nil {
				return err
			}
			f, err := ui.loadFleet()
			if err != nil {
				return err
			}
			return getRuns(c.Context, f, c.String("output"), ui)
		},
	}
}

// clusterRun is a run and the cluster it is on.
type clusterRun struct {
	runView
	Cluster string `json:"cluster" yaml:"cluster"`
}

// runView is a run as -o json and -o yaml show it. The API's "secrets" is
// null for a run given all of its owner's secrets (within its parent's,
// for a run launched by a run), which reads as none: such a run shows
// "all_secrets": true and no "secrets" instead. A run whose spec lists its
// secrets shows the list, [] for none, as the API does. Programs that read
// "secrets" see the same values as from the API.
type runView struct {
	*api.Run
	Secrets    *[]string `json:"secrets,omitempty"`
	AllSecrets bool      `json:"all_secrets,omitempty"`
}

func newRunView(r *api.Run) runView {
	v := runView{Run: r, AllSecrets: r.Secrets == nil}
	if r.Secrets != nil {
		v.Secrets = &r.Secrets
	}
	return v
}

func getRuns(ctx context.Context, f *fleet.Fleet, output string, ui *UI) error {
	results := fleet.FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *fleet.Cluster) ([]*api.Run, error) {
		return c.Client.ListRuns(ctx)
	})
	if err := answered(ui, results); err != nil {
		return err
	}
	var runs []*clusterRun
	for _, r := range results {
		for _, run := range r.Value {
			runs = append(runs, &clusterRun{runView: newRunView(run), Cluster: r.Cluster.Name})
		}
	}
	slices.SortStableFunc(runs, func(a, b *clusterRun) int { return a.CreatedAt.Compare(b.CreatedAt) })
	header := []string{"NAME", "STATUS", "IMAGE", "CREATED", "EXIT"}
	if !f.Direct {
		header = append(header, "CLUSTER")
	}
	return listing[*clusterRun]{
		empty:  "No runs found. Start one with `hush run -f FILE`.",
		header: header,
		name:   func(r *clusterRun) string { return r.Name },
		row: func(r *clusterRun) []string {
			exit := "-"
			if r.ExitCode != nil {
				exit = strconv.Itoa(*r.ExitCode)
			}
			image := r.Image
			if r.Runtime == "exec" {
				image = "(exec)"
			}
			row := []string{r.Name, string(r.Status), image, r.CreatedAt.Local().Format(time.DateTime), exit}
			if !f.Direct {
				row = append(row, r.Cluster)
			}
			return row
		},
	}.print(ui, output, runs)
}

func logsCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a run's output",
		ArgsUsage: "RUN",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing until the run ends"},
			&cli.IntFlag{Name: "tail", Value: -1, Usage: "print only the last `N` lines"},
			runClusterFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "one run name or id"); err != nil {
				return err
			}
			cl, run, err := findRun(c.Context, ui, c.String("cluster"), c.Args().First())
			if err != nil {
				return err
			}
			logs, err := cl.Client.RunLogs(c.Context, run.ID, api.LogsOptions{Follow: c.Bool("follow"), Tail: c.Int("tail")})
			if err != nil {
				return err
			}
			defer logs.Close()
			_, err = io.Copy(ui.out, logs)
			if c.Context.Err() != nil {
				return nil
			}
			return err
		},
	}
}

func describeCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "describe",
		Usage: "show everything about a resource",
		Subcommands: []*cli.Command{{
			Name:      "run",
			Usage:     "show a run's details and events",
			ArgsUsage: "RUN",
			Flags:     []cli.Flag{outputFlag(), runClusterFlag()},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one run name or id"); err != nil {
					return err
				}
				if err := checkOutput(c, c.String("output")); err != nil {
					return err
				}
				_, run, err := findRun(c.Context, ui, c.String("cluster"), c.Args().First())
				if err != nil {
					return err
				}
				switch c.String("output") {
				case formatJSON, formatYAML:
					return printStructured(ui.out, c.String("output"), newRunView(run))
				case formatName:
					fmt.Fprintln(ui.out, run.Name)
					return nil
				}
				describeRun(ui, run)
				return nil
			},
		}},
	}
}

func describeRun(ui *UI, r *api.Run) {
	w := ui.out
	stamp := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	fmt.Fprintf(w, "Name:       %s\nID:         %s\nStatus:     %s\n", r.Name, r.ID, r.Status)
	if r.ExitCode != nil {
		fmt.Fprintf(w, "Exit code:  %d\n", *r.ExitCode)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error:      %s\n", r.Error)
	}
	fmt.Fprintf(w, "Image:      %s\nRuntime:    %s\nCreated:    %s\nStarted:    %s\nEnded:      %s\n",
		r.Image, r.Runtime, stamp(&r.CreatedAt), stamp(r.StartedAt), stamp(r.EndedAt))
	if r.Parent != "" {
		fmt.Fprintf(w, "Parent:     %s\n", r.Parent)
	}
	if r.Node != "" {
		fmt.Fprintf(w, "Node:       %s\n", r.Node)
	}
	// The first of a run without retries is its only attempt: no news.
	if r.Attempt > 1 || r.Attempt > 0 && r.Retries > 0 {
		fmt.Fprintf(w, "Attempt:    %d of %d\n", r.Attempt, r.Retries+1)
	}
	if len(r.Constraints) > 0 {
		cs := make([]string, len(r.Constraints))
		for i, c := range r.Constraints {
			cs[i] = c.String()
		}
		fmt.Fprintf(w, "Placement:  %s\n", strings.Join(cs, ", "))
	}
	if compute := describeCompute(r); compute != "" {
		fmt.Fprintf(w, "Compute:    %s\n", compute)
	}
	if r.MaxDuration > 0 {
		fmt.Fprintf(w, "Max time:   %s\n", time.Duration(r.MaxDuration))
	}
	if r.MaxLogBytes > 0 {
		fmt.Fprintf(w, "Log cap:    %s\n", userfile.FormatSize(r.MaxLogBytes))
	}
	fmt.Fprintf(w, "Secrets:    %s\n", describeSecrets(r))
	if refresh := describeRefresh(r); refresh != "" {
		fmt.Fprintf(w, "Refresh:    %s\n", refresh)
	}
	access := "secrets " + cmp.Or(r.API.Secrets, api.AccessRead)
	fmt.Fprintf(w, "API:        %s\nCommand:    %s\n", access, strings.TrimSpace(r.Command))
	if len(r.Env) > 0 {
		fmt.Fprintln(w, "Env:")
		keys := make([]string, 0, len(r.Env))
		for k := range r.Env {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s=%s\n", k, r.Env[k])
		}
	}
	fmt.Fprintln(w, "\nEvents:")
	rows := make([][]string, len(r.Events))
	for i, e := range r.Events {
		rows[i] = []string{"  " + e.Time.Local().Format(time.TimeOnly), e.Type, e.Message}
	}
	table(w, []string{"  TIME", "TYPE", "MESSAGE"}, rows)
}

// describeSecrets says which secrets a run gets: the ones its spec names,
// or all of its owner's; a run launched by another run gets no more than
// its parent was given.
func describeSecrets(r *api.Run) string {
	list := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, ", ")
	}
	switch {
	case r.Secrets != nil:
		return list(r.Secrets)
	case r.Parent != "":
		return "those of its parent: " + list(r.SecretLimit)
	}
	return "all"
}

// describeCompute says what a run asked for, and which GPUs it was given:
// "2 GPUs (0, 1), 4 CPUs, 8GiB of memory".
func describeCompute(r *api.Run) string {
	var parts []string
	if r.GPUs > 0 {
		gpus := fmt.Sprintf("%d GPU", r.GPUs)
		if r.GPUs > 1 {
			gpus += "s"
		}
		if len(r.Devices) > 0 {
			gpus += " (" + strings.Join(r.Devices, ", ") + ")"
		}
		parts = append(parts, gpus)
	}
	if r.CPUs > 0 {
		unit := " CPUs"
		if r.CPUs == 1 {
			unit = " CPU"
		}
		parts = append(parts, strconv.FormatFloat(r.CPUs, 'f', -1, 64)+unit)
	}
	if r.MemoryBytes > 0 {
		parts = append(parts, api.FormatMemory(r.MemoryBytes)+" of memory")
	}
	return strings.Join(parts, ", ")
}

func stopCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop resources",
		Subcommands: []*cli.Command{{
			Name:      "run",
			Aliases:   []string{"runs"},
			Usage:     "stop runs (SIGTERM, then SIGKILL after the agent's grace period)",
			ArgsUsage: "RUN... | --all",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Usage: "stop all your active runs"},
				&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
				runClusterFlag(),
			},
			Action: func(c *cli.Context) error {
				return runsAction(c, ui, "stop", func(r *api.Run) bool { return !r.Status.Done() },
					func(ctx context.Context, client *api.Client, ref string) error {
						_, err := client.StopRun(ctx, ref)
						if apiErr := (*api.Error)(nil); errors.As(err, &apiErr) && apiErr.Code == api.CodeRunEnded {
							return &wholeError{err}
						}
						return err
					})
			},
		}},
	}
}

func deleteRunsCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Aliases:   []string{"runs"},
		Usage:     "delete runs and their logs, stopping them first",
		ArgsUsage: "RUN... | --all",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "delete all your runs"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"},
			runClusterFlag(),
		},
		Action: func(c *cli.Context) error {
			return runsAction(c, ui, "delete", func(*api.Run) bool { return true },
				func(ctx context.Context, client *api.Client, ref string) error {
					ctx, cancel := context.WithTimeout(ctx, deleteRunTimeout)
					defer cancel()
					return client.DeleteRun(ctx, ref)
				})
		},
	}
}

// deleteRunTimeout bounds deleting one run. Deleting an active run waits
// for it to stop, which takes up to the runtime's stop grace, so this is
// well past any grace a person would set.
const deleteRunTimeout = 5 * time.Minute

func imageCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "manage the agent's images",
		Subcommands: []*cli.Command{{
			Name:      "import",
			Usage:     "load an OCI or Docker image archive into the agent's containerd (needs a management token)",
			ArgsUsage: "FILE.tar",
			Flags:     []cli.Flag{clusterFlag("the default cluster")},
			Action: func(c *cli.Context) error {
				if err := exactArgs(c, 1, "one image archive"); err != nil {
					return err
				}
				f, err := userfile.Open(c.Args().First())
				if err != nil {
					return fmt.Errorf("open image archive: %w", err)
				}
				defer f.Close()
				if err := checkImageArchive(f, c.Args().First()); err != nil {
					return err
				}
				client, err := targetClient(c, ui)
				if err != nil {
					return err
				}
				names, err := client.ImportImage(c.Context, f)
				if err != nil {
					return err
				}
				if len(names) == 0 {
					return fmt.Errorf("%s holds no named image: tag it before saving it", c.Args().First())
				}
				for _, n := range names {
					ui.Success("Imported image %s", n)
				}
				return nil
			},
		}},
	}
}

// checkImageArchive refuses a file that does not start as a tar before it
// is uploaded, which for an archive of a few GiB takes a while, and leaves
// f at its start again.
func checkImageArchive(f *os.File, name string) error {
	head := make([]byte, api.ImageArchiveHeadSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read image archive %s: %w", name, err)
	}
	if err := api.CheckImageArchive(head[:n]); err != nil {
		return fmt.Errorf("%s is %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read image archive %s: %w", name, err)
	}
	return nil
}

// describeRefresh says how a run's secrets are refreshed: the run's
// setting, then each secret's own; "" when none is.
func describeRefresh(r *api.Run) string {
	say := func(f api.Refresh) string {
		var parts []string
		if f.Every > 0 {
			parts = append(parts, "every "+time.Duration(f.Every).String())
		}
		if f.OnChange != "" {
			parts = append(parts, "on_change "+f.OnChange)
		}
		return strings.Join(parts, ", ")
	}
	var out []string
	if s := say(r.Refresh); s != "" {
		out = append(out, s)
	}
	for _, name := range slices.Sorted(maps.Keys(r.SecretRefresh)) {
		if s := say(r.SecretRefresh[name]); s != "" {
			out = append(out, name+": "+s)
		}
	}
	return strings.Join(out, "; ")
}
