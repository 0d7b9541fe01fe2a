package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hush-sh/hush/sdk/api"
)

// StepKind is what a step of a plan does on one cluster.
type StepKind int

// The kinds of step.
const (
	// StepCreate creates a secret where it is missing.
	StepCreate StepKind = iota
	// StepDelete deletes a secret, by id.
	StepDelete
	// StepReplace deletes a secret, by id, and creates it anew.
	StepReplace
)

// Symbol is how plans show the kind: +, - or ~.
func (k StepKind) Symbol() string { return [...]string{"+", "-", "~"}[k] }

// Step is one change to one cluster, planned by sync or apply.
type Step struct {
	Kind    StepKind
	Cluster string
	Name    string
	Type    api.SecretType
	// ID is the id deleted (StepDelete) or created (StepCreate, StepReplace).
	ID string
	// OldID is the id a replace deletes.
	OldID string
	// From is the cluster a sync copies the secret from; Request is what
	// an apply creates instead.
	From    string
	Request *api.CreateSecretRequest
	Why     string
}

// Plan is the steps that bring the clusters in step, and what stands in the
// way that only a person can settle.
type Plan struct {
	Steps     []Step
	Conflicts []string
}

// Removes reports whether the step deletes a secret: a delete, or the first
// half of a replace.
func (s Step) Removes() bool { return s.Kind != StepCreate }

// Creates reports whether the step creates a secret: a create, or the
// second half of a replace.
func (s Step) Creates() bool { return s.Kind != StepDelete }

// checkUnique keeps a plan from giving a user a second secret of a type
// allowed once per user (git-ssh), which the agent would refuse: such a
// create becomes a conflict, unless the plan deletes the other secret on
// that cluster first.
func (p *Plan) checkUnique(replicas []*Replica) {
	all := slices.Clone(p.Steps)
	freed := func(cluster, name string) bool {
		return slices.ContainsFunc(all, func(s Step) bool { return s.Cluster == cluster && s.Name == name && s.Removes() })
	}
	taken := map[string]string{} // cluster/type -> name planned there
	kept := p.Steps[:0]
	for _, s := range all {
		spec, ok := api.LookupType(s.Type)
		if !s.Creates() || !ok || !spec.UniquePerOwner {
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

// CarryOut applies steps on every cluster at once, and returns how many
// steps each cluster it touched applied, and how it failed. On each
// cluster every delete comes first, the first half of each replace
// included, so that a name, or a type allowed once, is free before
// anything is created. Values of copied secrets are read from the cluster
// they come from and go only to the agent that gets them.
func CarryOut(ctx context.Context, f *Fleet, steps []Step) []Result[int] {
	var targets []*Cluster
	for _, c := range f.Clusters {
		if slices.ContainsFunc(steps, func(s Step) bool { return s.Cluster == c.Name }) {
			targets = append(targets, c)
		}
	}
	return FanOut(ctx, f, targets, func(ctx context.Context, c *Cluster) (int, error) {
		mine := slices.DeleteFunc(slices.Clone(steps), func(s Step) bool { return s.Cluster != c.Name })
		done := 0
		for _, s := range mine {
			if !s.Removes() {
				continue
			}
			if err := s.remove(ctx, c); err != nil {
				return done, err
			}
			if s.Kind == StepDelete {
				done++
			}
		}
		for _, s := range mine {
			if !s.Creates() {
				continue
			}
			if err := s.create(ctx, f, c); err != nil {
				if s.Kind == StepReplace {
					err = fmt.Errorf("%w (the old %s was deleted; the new one is not there yet)", err, s.Name)
				}
				return done, err
			}
			done++
		}
		return done, nil
	})
}

// remove carries out the delete of a delete or replace step on cluster c,
// guarded by the id the plan saw, so that it never deletes another secret
// of the same name.
func (s Step) remove(ctx context.Context, c *Cluster) error {
	id := s.ID
	if s.Kind == StepReplace {
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
func (s Step) create(ctx context.Context, f *Fleet, c *Cluster) error {
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
	// A copy keeps its reference as it is: the cluster may get the
	// plugin later, and the secret is the same one everywhere.
	exp.NoCheck = true
	if _, err := c.Client.CreateSecret(ctx, exp); err != nil {
		return fmt.Errorf("copy secret %s from %s: %w", s.Name, s.From, err)
	}
	return nil
}
