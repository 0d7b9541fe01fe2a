package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
)

// stepKind is what a step of a plan does on one cluster.
type stepKind int

const (
	stepCreate stepKind = iota
	stepDelete
	stepReplace
)

func (k stepKind) symbol() string { return [...]string{"+", "-", "~"}[k] }

// step is one change to one cluster, planned by sync or apply.
type step struct {
	Kind    stepKind
	Cluster string
	Name    string
	Type    api.SecretType
	// ID is the id deleted (stepDelete) or created (stepCreate, stepReplace).
	ID string
	// OldID is the id a replace deletes.
	OldID string
	// From is the cluster a sync copies the secret from; Request is what
	// an apply creates instead.
	From    string
	Request *api.CreateSecretRequest
	Why     string
}

// secretPlan is the steps that bring the clusters in step, and what stands in the
// way that only a person can settle.
type secretPlan struct {
	Steps     []step
	Conflicts []string
}

// removes reports whether the step deletes a secret: a delete, or the first
// half of a replace.
func (s step) removes() bool { return s.Kind != stepCreate }

// creates reports whether the step creates a secret: a create, or the
// second half of a replace.
func (s step) creates() bool { return s.Kind != stepDelete }

// checkUnique keeps a plan from giving a user a second secret of a type
// allowed once per user (git-ssh), which the agent would refuse: such a
// create becomes a conflict, unless the plan deletes the other secret on
// that cluster first.
func (p *secretPlan) checkUnique(replicas []*replica) {
	all := slices.Clone(p.Steps)
	freed := func(cluster, name string) bool {
		return slices.ContainsFunc(all, func(s step) bool { return s.Cluster == cluster && s.Name == name && s.removes() })
	}
	taken := map[string]string{} // cluster/type -> name planned there
	kept := p.Steps[:0]
	for _, s := range all {
		spec, ok := api.LookupType(s.Type)
		if !s.creates() || !ok || !spec.UniquePerOwner {
			kept = append(kept, s)
			continue
		}
		key := s.Cluster + "/" + string(s.Type)
		other, verb := taken[key], "gets"
		for _, r := range replicas {
			for name, held := range r.Secrets {
				if r.Cluster == s.Cluster && held.Type == s.Type && name != s.Name && !freed(s.Cluster, name) {
					other, verb = name, "holds"
				}
			}
		}
		if other != "" && other != s.Name {
			p.Conflicts = append(p.Conflicts, fmt.Sprintf(
				"cluster %s %s %s secret %s, and a user may hold only one: %s cannot go there; delete one of the two",
				s.Cluster, verb, s.Type, other, s.Name))
			continue
		}
		taken[key] = s.Name
		kept = append(kept, s)
	}
	p.Steps = kept
}

// printSteps lists a plan's steps cluster by cluster, saying so for the
// clusters it leaves as they are.
func printSteps(ui *UI, clusters []string, steps []step) {
	for _, cl := range clusters {
		var lines []string
		for _, s := range steps {
			if s.Cluster != cl {
				continue
			}
			id := s.ID
			if s.Kind == stepReplace {
				id = s.OldID + " -> " + s.ID
			}
			line := fmt.Sprintf("    %s %s (%s)", s.Kind.symbol(), s.Name, id)
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

// carryOut applies steps on every cluster at once. On each cluster every
// delete comes first, the first half of each replace included, so that a
// name, or a type allowed once, is free before anything is created. Values
// of copied secrets are read from the cluster they come from and go only to
// the agent that gets them.
func carryOut(ctx context.Context, f *fleet, steps []step, ui *UI) error {
	var targets []*cluster
	for _, c := range f.Clusters {
		if slices.ContainsFunc(steps, func(s step) bool { return s.Cluster == c.Name }) {
			targets = append(targets, c)
		}
	}
	results := fanOut(ctx, f, targets, func(ctx context.Context, c *cluster) (int, error) {
		mine := slices.DeleteFunc(slices.Clone(steps), func(s step) bool { return s.Cluster != c.Name })
		done := 0
		for _, s := range mine {
			if !s.removes() {
				continue
			}
			if err := s.remove(ctx, c); err != nil {
				return done, err
			}
			if s.Kind == stepDelete {
				done++
			}
		}
		for _, s := range mine {
			if !s.creates() {
				continue
			}
			if err := s.create(ctx, f, c); err != nil {
				if s.Kind == stepReplace {
					err = fmt.Errorf("%w (the old %s was deleted; the new one is not there yet)", err, s.Name)
				}
				return done, err
			}
			done++
		}
		return done, nil
	})
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

// remove carries out the delete of a delete or replace step on cluster c,
// guarded by the id the plan saw, so that it never deletes another secret
// of the same name.
func (s step) remove(ctx context.Context, c *cluster) error {
	id := s.ID
	if s.Kind == stepReplace {
		id = s.OldID
	}
	err := c.Client.DeleteSecretID(ctx, s.Name, id)
	if err != nil && !errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("delete secret %s: %w", s.Name, err)
	}
	return nil
}

// create carries out the create of a create or replace step on cluster c:
// the declared secret of an apply, or a copy of the secret on s.From.
func (s step) create(ctx context.Context, f *fleet, c *cluster) error {
	if s.Request != nil {
		if _, err := c.Client.CreateSecret(ctx, s.Request); err != nil {
			return fmt.Errorf("create secret %s: %w", s.Name, err)
		}
		return nil
	}
	from, err := f.Lookup(s.From)
	if err != nil {
		return err
	}
	exp, err := from.Client.ExportSecret(ctx, s.Name)
	if err != nil {
		return fmt.Errorf("export secret %s from %s: %w", s.Name, s.From, err)
	}
	if exp.ID != s.ID {
		return fmt.Errorf("secret %s changed on %s while syncing: run `hush sync secrets` again", s.Name, s.From)
	}
	if _, err := c.Client.CreateSecret(ctx, exp); err != nil {
		return fmt.Errorf("copy secret %s from %s: %w", s.Name, s.From, err)
	}
	return nil
}
