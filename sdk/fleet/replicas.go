package fleet

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
)

// Replica is what one cluster holds of the user's secrets: the secrets by
// name and the tombstones of deleted ones by id.
type Replica struct {
	Cluster    string
	Secrets    map[string]*api.Secret
	Tombstones map[string]*api.Tombstone
	// Unreadable names the secrets the cluster holds but cannot read. They
	// count as held there, under their ids, so that nothing is copied over
	// them; the caller should say so.
	Unreadable []string
}

// NewReplica indexes what one cluster listed.
func NewReplica(cluster string, secrets []*api.Secret, graves []*api.Tombstone) *Replica {
	r := &Replica{Cluster: cluster, Secrets: map[string]*api.Secret{}, Tombstones: map[string]*api.Tombstone{}}
	for _, s := range secrets {
		r.Secrets[s.Name] = s
	}
	for _, g := range graves {
		r.Tombstones[g.ID] = g
	}
	return r
}

// ReadReplicas reads every cluster's secrets and tombstones at once, and
// returns what each cluster holds, or why it did not answer, in cluster
// order.
func ReadReplicas(ctx context.Context, f *Fleet) []Result[*Replica] {
	return FanOut(ctx, f, f.Clusters, func(ctx context.Context, c *Cluster) (*Replica, error) {
		list, err := c.Client.ListSecretsReport(ctx, "")
		if err != nil {
			return nil, err
		}
		graves, err := c.Client.ListTombstones(ctx)
		if err != nil {
			return nil, err
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
		r := NewReplica(c.Name, secrets, graves)
		r.Unreadable = names
		return r, nil
	})
}

// ClusterNames returns the names of the replicas' clusters.
func ClusterNames(replicas []*Replica) []string {
	names := make([]string, len(replicas))
	for i, r := range replicas {
		names[i] = r.Cluster
	}
	return names
}

// Copies is how the replicas hold one secret name.
type Copies struct {
	Name string
	// Holders lists, by secret id, the clusters holding the name with that id.
	Holders map[string][]string
	// Dead lists, by secret id, the clusters holding a tombstone for it.
	Dead map[string][]string
	// Meta is the metadata of each id, from its first holder.
	Meta map[string]*api.Secret
}

// Collate gathers, name by name, which replica holds which id of each
// secret, and which ids a replica deleted.
func Collate(replicas []*Replica) []*Copies {
	byName := map[string]*Copies{}
	get := func(name string) *Copies {
		c := byName[name]
		if c == nil {
			c = &Copies{Name: name, Holders: map[string][]string{}, Dead: map[string][]string{}, Meta: map[string]*api.Secret{}}
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
	slices.SortFunc(out, func(a, b *Copies) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Live returns the ids that some replica holds and none has deleted,
// oldest first.
func (c *Copies) Live() []string {
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
func (c *Copies) compareAge(a, b string) int {
	if n := c.Meta[a].CreatedAt.Compare(c.Meta[b].CreatedAt); n != 0 {
		return n
	}
	return cmp.Compare(a, b)
}

// deleteSteps plans deleting id from every cluster that holds it.
func (c *Copies) deleteSteps(id, why string) []Step {
	steps := make([]Step, len(c.Holders[id]))
	for i, cl := range c.Holders[id] {
		steps[i] = Step{Kind: StepDelete, Cluster: cl, Name: c.Name, Type: c.Meta[id].Type, ID: id, Why: why}
	}
	return steps
}

// describeHolders renders "01J… on a, b; 01K… on c" for a conflict.
func (c *Copies) describeHolders(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s on %s", id, strings.Join(c.Holders[id], ", "))
	}
	return strings.Join(parts, "; ")
}
