package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/hush-sh/hush/sdk/fleet"
)

// fetchReplicas reads every cluster's secrets and tombstones at once. It
// reports each cluster that did not answer, and each secret a cluster
// cannot read, returns how many clusters did not answer, and errReported
// when none answered.
func fetchReplicas(ctx context.Context, f *fleet.Fleet, ui *UI) (replicas []*fleet.Replica, failed int, err error) {
	for _, r := range fleet.ReadReplicas(ctx, f) {
		switch {
		case r.Err != nil:
			failed++
			ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
		default:
			if len(r.Value.Unreadable) > 0 {
				ui.Warn("cluster %s cannot read secret(s) %s: they are left as they are there; `hush get secrets` says more",
					r.Cluster.Name, strings.Join(r.Value.Unreadable, ", "))
			}
			replicas = append(replicas, r.Value)
		}
	}
	if len(replicas) == 0 {
		return nil, failed, errReported
	}
	return replicas, failed, nil
}

// printSteps lists a plan's steps cluster by cluster, saying so for the
// clusters it leaves as they are.
func printSteps(ui *UI, clusters []string, steps []fleet.Step) {
	for _, cl := range clusters {
		var lines []string
		for _, s := range steps {
			if s.Cluster != cl {
				continue
			}
			id := s.ID
			if s.Kind == fleet.StepReplace {
				id = s.OldID + " -> " + s.ID
			}
			line := fmt.Sprintf("    %s %s (%s)", s.Kind.Symbol(), s.Name, id)
			if s.Why != "" {
				line += ": " + s.Why
			}
			lines = append(lines, line)
		}
		if len(lines) == 0 {
			fmt.Fprintf(ui.out, "  cluster %s: no changes\n", cl)
			continue
		}
		fmt.Fprintf(ui.out, "  cluster %s:\n%s\n", cl, strings.Join(lines, "\n"))
	}
}

// carryOut applies steps on every cluster at once (see fleet.CarryOut),
// reports each cluster that failed, and returns errReported when any did.
func carryOut(ctx context.Context, f *fleet.Fleet, steps []fleet.Step, ui *UI) error {
	results := fleet.CarryOut(ctx, f, steps)
	applied, failed := 0, 0
	for _, r := range results {
		applied += r.Value
		if r.Err != nil {
			failed++
			ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
		}
	}
	if failed > 0 {
		ui.Warn("Applied %d of %d change(s); %d of %d clusters failed", applied, len(steps), failed, len(results))
		return errReported
	}
	return nil
}
