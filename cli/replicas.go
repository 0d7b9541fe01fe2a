package cli

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
)

// replica is what one cluster holds of the user's secrets: the secrets by
// name and the tombstones of deleted ones by id.
type replica struct {
	Cluster    string
	Secrets    map[string]*api.Secret
	Tombstones map[string]*api.Tombstone
}

// newReplica indexes what one cluster listed.
func newReplica(cluster string, secrets []*api.Secret, graves []*api.Tombstone) *replica {
	r := &replica{Cluster: cluster, Secrets: map[string]*api.Secret{}, Tombstones: map[string]*api.Tombstone{}}
	for _, s := range secrets {
		r.Secrets[s.Name] = s
	}
	for _, g := range graves {
		r.Tombstones[g.ID] = g
	}
	return r
}

// fetchReplicas reads every cluster's secrets and tombstones at once. It
// reports each cluster that did not answer, returns how many did not, and
// errReported when none answered.
func fetchReplicas(ctx context.Context, f *fleet, ui *UI) (replicas []*replica, failed int, err error) {
	type listing struct {
		replica    *replica
		unreadable []string
	}
	results := fanOut(ctx, f, f.Clusters, func(ctx context.Context, c *cluster) (listing, error) {
		list, err := c.Client.ListSecretsReport(ctx, "")
		if err != nil {
			return listing{}, err
		}
		graves, err := c.Client.ListTombstones(ctx)
		if err != nil {
			return listing{}, err
		}
		// A secret the agent holds but cannot read is still held there:
		// nothing is copied over it, and its id counts as it is.
		secrets := list.Secrets
		var names []string
		for _, u := range list.Unreadable {
			names = append(names, u.Name)
			if u.ID != "" {
				secrets = append(secrets, &api.Secret{ID: u.ID, Name: u.Name, Type: u.Type, Source: "unreadable"})
			}
		}
		return listing{newReplica(c.Name, secrets, graves), names}, nil
	})
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed++
			ui.Fail("cluster %s: %v", r.Cluster.Name, r.Err)
		default:
			if len(r.Value.unreadable) > 0 {
				ui.Warn("cluster %s cannot read secret(s) %s: they are left as they are there; `hush get secrets` says more",
					r.Cluster.Name, strings.Join(r.Value.unreadable, ", "))
			}
			replicas = append(replicas, r.Value.replica)
		}
	}
	if len(replicas) == 0 {
		return nil, failed, errReported
	}
	return replicas, failed, nil
}

// copies is how the replicas hold one secret name.
type copies struct {
	Name string
	// Holders lists, by secret id, the clusters holding the name with that id.
	Holders map[string][]string
	// Dead lists, by secret id, the clusters holding a tombstone for it.
	Dead map[string][]string
	// Meta is the metadata of each id, from its first holder.
	Meta map[string]*api.Secret
}

// collate gathers, name by name, which replica holds which id of each
// secret, and which ids a replica deleted.
func collate(replicas []*replica) []*copies {
	byName := map[string]*copies{}
	get := func(name string) *copies {
		c := byName[name]
		if c == nil {
			c = &copies{Name: name, Holders: map[string][]string{}, Dead: map[string][]string{}, Meta: map[string]*api.Secret{}}
			byName[name] = c
		}
		return c
	}
	for _, r := range replicas {
		for name, s := range r.Secrets {
			c := get(name)
			c.Holders[s.ID] = append(c.Holders[s.ID], r.Cluster)
			if c.Meta[s.ID] == nil {
				c.Meta[s.ID] = s
			}
		}
	}
	// Tombstones matter only for names some replica still holds.
	for _, r := range replicas {
		for id, g := range r.Tombstones {
			if c := byName[g.Name]; c != nil {
				c.Dead[id] = append(c.Dead[id], r.Cluster)
			}
		}
	}
	out := slices.Collect(maps.Values(byName))
	slices.SortFunc(out, func(a, b *copies) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// live returns the ids that some replica holds and none has deleted,
// oldest first.
func (c *copies) live() []string {
	var ids []string
	for id := range c.Holders {
		if len(c.Dead[id]) == 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, c.compareAge)
	return ids
}

// compareAge orders ids by creation time, then by id: ULIDs sort by the
// time they were made.
func (c *copies) compareAge(a, b string) int {
	if n := c.Meta[a].CreatedAt.Compare(c.Meta[b].CreatedAt); n != 0 {
		return n
	}
	return cmp.Compare(a, b)
}

// deleteSteps plans deleting id from every cluster that holds it.
func (c *copies) deleteSteps(id, why string) []step {
	steps := make([]step, len(c.Holders[id]))
	for i, cl := range c.Holders[id] {
		steps[i] = step{Kind: stepDelete, Cluster: cl, Name: c.Name, Type: c.Meta[id].Type, ID: id, Why: why}
	}
	return steps
}

// describeHolders renders "01J… on a, b; 01K… on c" for a conflict.
func (c *copies) describeHolders(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s on %s", id, strings.Join(c.Holders[id], ", "))
	}
	return strings.Join(parts, "; ")
}
