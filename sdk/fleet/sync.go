package fleet

import (
	"fmt"
	"slices"
	"strings"
)

// PreferNewest is the --prefer of sync that settles a name held with
// different ids for the one created last.
const PreferNewest = "newest"

// PlanSync works out how to bring the replicas in step: a deleted id is
// deleted everywhere, a live id is copied where it is missing, and a name
// held with several live ids is a conflict unless prefer settles it:
// PreferNewest, or the name of the cluster whose copy wins.
func PlanSync(replicas []*Replica, prefer string) *Plan {
	plan := &Plan{}
	for _, c := range Collate(replicas) {
		for id := range c.Holders {
			if len(c.Dead[id]) > 0 {
				plan.Steps = append(plan.Steps, c.deleteSteps(id, "deleted on "+strings.Join(c.Dead[id], ", "))...)
			}
		}
		live := c.Live()
		if len(live) == 0 {
			continue
		}
		keep := live[0]
		if len(live) > 1 {
			var why string
			keep, why = settle(c, live, prefer)
			if keep == "" {
				if why == "" {
					why = "; keep one with `--prefer newest`, or `--prefer CLUSTER` to keep that cluster's"
				}
				plan.Conflicts = append(plan.Conflicts, fmt.Sprintf("secret %s is held with different ids: %s%s",
					c.Name, c.describeHolders(live), why))
				continue
			}
			for _, id := range live {
				if id != keep {
					plan.Steps = append(plan.Steps, c.deleteSteps(id, why)...)
				}
			}
		}
		for _, r := range replicas {
			if !slices.Contains(c.Holders[keep], r.Cluster) {
				plan.Steps = append(plan.Steps, Step{Kind: StepCreate, Cluster: r.Cluster, Name: c.Name, Type: c.Meta[keep].Type, ID: keep,
					From: c.Holders[keep][0], Why: "copied from " + c.Holders[keep][0]})
			}
		}
	}
	plan.checkUnique(replicas)
	return plan
}

// settle picks the id to keep of a name held with several, as prefer says,
// and why; "" when prefer does not settle it.
func settle(c *Copies, live []string, prefer string) (keep, why string) {
	switch prefer {
	case "":
		return "", ""
	case PreferNewest:
		keep = live[len(live)-1]
		return keep, fmt.Sprintf("conflict settled for the newest, %s", keep)
	}
	for _, id := range live {
		if slices.Contains(c.Holders[id], prefer) {
			return id, fmt.Sprintf("conflict settled for %s's copy, %s", prefer, id)
		}
	}
	return "", fmt.Sprintf(" (%s holds none of them, so --prefer %s cannot settle it)", prefer, prefer)
}
