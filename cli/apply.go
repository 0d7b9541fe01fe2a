package cli

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
	"github.com/urfave/cli/v2"
)

func applyCommand(ui *UI) *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "make every cluster hold the secrets a file declares",
		Description: "The file is HCL (secret \"TYPE\" \"NAME\" { ... } blocks) or YAML (a secrets: list); see\n" +
			"examples/secrets.hcl. Values come from file(\"path\"), env(\"VAR\"), a provider reference\n" +
			"(from = \"vault:...\"), or a literal. The plan compares content by digests each agent\n" +
			"computes under its own key, so values are never shown or compared in the clear.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the secrets `FILE` (.hcl, .yaml or .yml)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan, and change nothing"},
			&cli.BoolFlag{Name: "prune", Usage: "delete secrets the file does not declare"},
			&cli.BoolFlag{Name: "replace", Usage: "replace secrets whose content differs from the file"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask before deleting or replacing"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf(c, "`hush apply` takes no arguments; got %q (give the file with -f FILE)", c.Args().First())
			}
			if c.String("file") == "" {
				return usageErrorf(c, "missing -f FILE: give a secrets file, such as examples/secrets.hcl")
			}
			f, err := loadFleet()
			if err != nil {
				return err
			}
			return applySecrets(c.Context, f, &applyOptions{
				File: c.String("file"), DryRun: c.Bool("dry-run"), Prune: c.Bool("prune"),
				Replace: c.Bool("replace"), Yes: c.Bool("yes"), UI: ui,
			})
		},
	}
}

type applyOptions struct {
	File                   string
	DryRun, Prune, Replace bool
	Yes                    bool
	UI                     *UI
}

// applySecrets makes every cluster hold the declared secrets: it reads the
// clusters, plans per cluster, prints the plan, and carries it out.
func applySecrets(ctx context.Context, f *fleet, opts *applyOptions) error {
	ui := opts.UI
	file, warnings, err := spec.ParseSecretsFile(opts.File)
	for _, w := range warnings {
		ui.Warn("%s", w)
	}
	if err != nil {
		return err
	}
	replicas, failed, err := fetchReplicas(ctx, f, ui)
	if err != nil {
		return err
	}
	same, err := compareDeclared(ctx, f, replicas, file.Secrets)
	if err != nil {
		return err
	}
	plan := planApply(file.Secrets, replicas, same, opts)
	for _, d := range plan.Conflicts {
		ui.Warn("%s", d)
	}
	// Exit 1 while anything stays out of step, on a dry run too.
	inStep := failed == 0 && len(plan.Conflicts) == 0
	if failed > 0 {
		ui.Warn("%d of %d clusters did not answer; run `hush apply -f %s` again when they do", failed, len(f.Clusters), opts.File)
	}
	switch {
	case len(plan.Steps) == 0 && inStep:
		ui.Success("No changes: every cluster matches %s", opts.File)
		return nil
	case len(plan.Steps) == 0:
		ui.Info("Nothing changed")
		return errReported
	}
	fmt.Fprintf(ui.out, "Plan for %s:\n", opts.File)
	printSteps(ui, clusterNames(replicas), plan.Steps)
	destructive := slices.ContainsFunc(plan.Steps, func(s step) bool { return s.removes() })
	declined := false
	if !opts.DryRun && destructive && !opts.Yes && ui.interactive() {
		ok, err := ui.Confirm("Delete or replace secrets as planned?")
		if err != nil {
			return err
		}
		declined = !ok
	}
	switch {
	case opts.DryRun:
		ui.Info("Dry run: nothing was changed (%d change(s) planned)", len(plan.Steps))
	case declined:
		ui.Info("Nothing changed")
		return nil
	default:
		if err := carryOut(ctx, f, plan.Steps, ui); err != nil {
			ui.Hint("Run `hush apply -f %s` again once the failures above are fixed.", opts.File)
			return err
		}
		ui.Success("Applied %d change(s): %s", len(plan.Steps), plan.summary())
	}
	if !inStep {
		return errReported
	}
	return nil
}

// compareDeclared asks each cluster holding a declared name whether its
// copy has the declared content, by the cluster's own digest of both. It
// answers, by cluster and name, whether the content is the same.
func compareDeclared(ctx context.Context, f *fleet, replicas []*replica, decls []*spec.DeclaredSecret) (map[string]map[string]bool, error) {
	held := map[string]*replica{}
	var clusters []*cluster
	for _, r := range replicas {
		held[r.Cluster] = r
		c, _ := f.Lookup(r.Cluster)
		clusters = append(clusters, c)
	}
	results := fanOut(ctx, f, clusters, func(ctx context.Context, c *cluster) (map[string]bool, error) {
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

// planApply works out the steps that make every replica hold the declared
// secrets. A secret missing from some clusters is copied there under the
// id the others hold; when that cannot keep one identity everywhere (the
// id was deleted somewhere, or the clusters hold different ids) it is
// recreated everywhere under a new id. Content that differs from the file
// is replaced only with --replace, and undeclared secrets deleted only
// with --prune.
func planApply(decls []*spec.DeclaredSecret, replicas []*replica, same map[string]map[string]bool, opts *applyOptions) *secretPlan {
	plan := &secretPlan{}
	byName := map[string]*copies{}
	for _, c := range collate(replicas) {
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
			plan.add(stepCreate, missing, nil, name, fresh, "")
			continue
		}
		ids := slices.Sorted(maps.Keys(c.Holders))
		var dead []string
		for _, id := range ids {
			dead = append(dead, c.Dead[id]...)
		}
		recreate := func(why string) {
			plan.add(stepReplace, holders, c, name, fresh, why)
			plan.add(stepCreate, missing, nil, name, fresh, why)
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
			plan.add(stepCreate, missing, nil, name, withIdentity(d.Request, meta.ID, meta.CreatedAt), "")
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
	slices.SortStableFunc(plan.Steps, func(a, b step) int { return strings.Compare(a.Name, b.Name) })
	plan.checkUnique(replicas)
	return plan
}

// add plans one kind of step for the secret req on each of clusters; a
// replace deletes the id that c says each cluster holds.
func (p *secretPlan) add(kind stepKind, clusters []string, c *copies, name string, req *api.CreateSecretRequest, why string) {
	for _, cl := range clusters {
		s := step{Kind: kind, Cluster: cl, Name: name, Type: req.Type, ID: req.ID, Request: req, Why: why}
		if kind == stepReplace {
			for id, holders := range c.Holders {
				if slices.Contains(holders, cl) {
					s.OldID = id
				}
			}
		}
		p.Steps = append(p.Steps, s)
	}
}

// summary counts the steps by kind.
func (p *secretPlan) summary() string {
	var n [3]int
	for _, s := range p.Steps {
		n[s.Kind]++
	}
	return fmt.Sprintf("%d created, %d replaced, %d deleted", n[stepCreate], n[stepReplace], n[stepDelete])
}

// withIdentity returns a copy of req that creates the secret as id, made
// at createdAt, so that every cluster holds the same identity.
func withIdentity(req *api.CreateSecretRequest, id string, createdAt time.Time) *api.CreateSecretRequest {
	out := *req
	out.ID, out.CreatedAt = id, createdAt
	return &out
}
