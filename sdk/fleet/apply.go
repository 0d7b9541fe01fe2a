package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/spec"
	"github.com/oklog/ulid/v2"
)

// ApplyOptions says how far PlanApply may go.
type ApplyOptions struct {
	// File names the secrets file, for the steps' reasons.
	File string
	// Replace replaces secrets whose content differs from the file; Prune
	// deletes secrets the file does not declare.
	Replace, Prune bool
}

// CompareDeclared asks each cluster holding a declared name whether its
// copy has the declared content, by the cluster's own digest of both. It
// answers, by cluster and name, whether the content is the same.
func CompareDeclared(ctx context.Context, f *Fleet, replicas []*Replica, decls []*spec.DeclaredSecret) (map[string]map[string]bool, error) {
	held := map[string]*Replica{}
	var clusters []*Cluster
	for _, r := range replicas {
		held[r.Cluster] = r
		c, _ := f.Lookup(r.Cluster)
		clusters = append(clusters, c)
	}
	results := FanOut(ctx, f, clusters, func(ctx context.Context, c *Cluster) (map[string]bool, error) {
		same := map[string]bool{}
		for _, d := range decls {
			stored := held[c.Name].Secrets[d.Request.Name]
			if stored == nil {
				continue
			}
			digest, err := c.Client.DigestSecret(ctx, d.Request)
			if err != nil {
				return nil, fmt.Errorf("%s: secret %s: %w", d.Pos, d.Request.Name, err)
			}
			same[d.Request.Name] = digest == stored.Digest
		}
		return same, nil
	})
	out := map[string]map[string]bool{}
	for _, r := range results {
		if r.Err != nil {
			return nil, fmt.Errorf("cluster %s: %w", r.Cluster.Name, r.Err)
		}
		out[r.Cluster.Name] = r.Value
	}
	return out, nil
}

// PlanApply works out the steps that make every replica hold the declared
// secrets. A secret missing from some clusters is copied there under the
// id the others hold; when that cannot keep one identity everywhere (the
// id was deleted somewhere, or the clusters hold different ids) it is
// recreated everywhere under a new id. Content that differs from the file
// is replaced only with --replace, and undeclared secrets deleted only
// with --prune.
func PlanApply(decls []*spec.DeclaredSecret, replicas []*Replica, same map[string]map[string]bool, opts *ApplyOptions) *Plan {
	plan := &Plan{}
	byName := map[string]*Copies{}
	for _, c := range Collate(replicas) {
		byName[c.Name] = c
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, d := range decls {
		name := d.Request.Name
		c := byName[name]
		var holders, missing, differ []string
		for _, r := range replicas {
			if r.Secrets[name] == nil {
				missing = append(missing, r.Cluster)
				continue
			}
			holders = append(holders, r.Cluster)
			if !same[r.Cluster][name] {
				differ = append(differ, r.Cluster)
			}
		}
		fresh := withIdentity(d.Request, ulid.Make().String(), now)
		if len(holders) == 0 {
			plan.add(StepCreate, missing, nil, name, fresh, "")
			continue
		}
		ids := slices.Sorted(maps.Keys(c.Holders))
		var dead []string
		for _, id := range ids {
			dead = append(dead, c.Dead[id]...)
		}
		recreate := func(why string) {
			plan.add(StepReplace, holders, c, name, fresh, why)
			plan.add(StepCreate, missing, nil, name, fresh, why)
		}
		switch {
		case len(differ) > 0 && !opts.Replace:
			plan.Conflicts = append(plan.Conflicts, fmt.Sprintf(
				"%s: secret %s differs from the file on %s: left as it is; run with --replace to replace it",
				d.Pos, name, strings.Join(differ, ", ")))
		case len(differ) > 0:
			recreate("content differs from the file")
		case len(ids) > 1:
			recreate("held with different ids; recreated under one")
		case len(dead) > 0:
			recreate("deleted on " + strings.Join(slices.Compact(slices.Sorted(slices.Values(dead))), ", ") + "; recreated under a new id")
		case len(missing) > 0:
			meta := c.Meta[ids[0]]
			plan.add(StepCreate, missing, nil, name, withIdentity(d.Request, meta.ID, meta.CreatedAt), "")
		}
	}
	if opts.Prune {
		for _, c := range byName {
			if slices.ContainsFunc(decls, func(d *spec.DeclaredSecret) bool { return d.Request.Name == c.Name }) {
				continue
			}
			for id := range c.Holders {
				plan.Steps = append(plan.Steps, c.deleteSteps(id, "not in "+opts.File)...)
			}
		}
	}
	slices.SortStableFunc(plan.Steps, func(a, b Step) int { return strings.Compare(a.Name, b.Name) })
	plan.checkUnique(replicas)
	return plan
}

// add plans one kind of step for the secret req on each of clusters; a
// replace deletes the id that c says each cluster holds.
func (p *Plan) add(kind StepKind, clusters []string, c *Copies, name string, req *api.CreateSecretRequest, why string) {
	for _, cl := range clusters {
		s := Step{Kind: kind, Cluster: cl, Name: name, Type: req.Type, ID: req.ID, Request: req, Why: why}
		if kind == StepReplace {
			for id, holders := range c.Holders {
				if slices.Contains(holders, cl) {
					s.OldID = id
				}
			}
		}
		p.Steps = append(p.Steps, s)
	}
}

// Summary counts the steps by kind.
func (p *Plan) Summary() string {
	var n [3]int
	for _, s := range p.Steps {
		n[s.Kind]++
	}
	return fmt.Sprintf("%d created, %d replaced, %d deleted", n[StepCreate], n[StepReplace], n[StepDelete])
}

// withIdentity returns a copy of req that creates the secret as id, made
// at createdAt, so that every cluster holds the same identity.
func withIdentity(req *api.CreateSecretRequest, id string, createdAt time.Time) *api.CreateSecretRequest {
	out := *req
	out.ID, out.CreatedAt = id, createdAt
	return &out
}
