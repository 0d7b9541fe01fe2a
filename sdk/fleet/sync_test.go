package fleet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// held builds a replica from "name=id" or "name=id:type" secrets and
// tombstoned "name=id" pairs.
func held(cluster string, secrets []string, graves ...string) *Replica {
	r := &Replica{Cluster: cluster, Secrets: map[string]*api.Secret{}, Tombstones: map[string]*api.Tombstone{}}
	for _, s := range secrets {
		s, typ, _ := strings.Cut(s, ":")
		name, id, _ := strings.Cut(s, "=")
		// Later ids are newer, as ULIDs are.
		r.Secrets[name] = &api.Secret{Name: name, ID: id, Type: api.SecretType(typ), CreatedAt: time.Unix(int64(id[0]), 0)}
	}
	for _, g := range graves {
		name, id, _ := strings.Cut(g, "=")
		r.Tombstones[id] = &api.Tombstone{Name: name, ID: id}
	}
	return r
}

func render(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = fmt.Sprintf("%s %s %s=%s", s.Kind.Symbol(), s.Cluster, s.Name, s.ID)
		if s.From != "" {
			out[i] += " from " + s.From
		}
	}
	slices.Sort(out)
	return out
}

func TestPlanSync(t *testing.T) {
	tests := map[string]struct {
		replicas  []*Replica
		prefer    string
		want      []string
		conflicts int
	}{
		"in step": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=1"})},
		},
		"missing is copied": {
			replicas: []*Replica{held("a", []string{"x=1", "y=2"}), held("b", []string{"x=1"}), held("c", nil)},
			want:     []string{"+ b y=2 from a", "+ c x=1 from a", "+ c y=2 from a"},
		},
		"a tombstone beats a copy": {
			replicas: []*Replica{held("a", nil, "x=1"), held("b", []string{"x=1"}), held("c", nil)},
			want:     []string{"- b x=1"},
		},
		"a new id after a delete is copied": {
			replicas: []*Replica{held("a", []string{"x=2"}, "x=1"), held("b", []string{"x=1"})},
			want:     []string{"+ b x=2 from a", "- b x=1"},
		},
		"different ids conflict": {
			replicas:  []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=2"}), held("c", nil)},
			conflicts: 1,
		},
		"prefer newest": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=2"}), held("c", nil)},
			prefer:   PreferNewest,
			want:     []string{"+ a x=2 from b", "+ c x=2 from b", "- a x=1"},
		},
		"prefer a cluster": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=2"}), held("c", nil)},
			prefer:   "a",
			want:     []string{"+ b x=1 from a", "+ c x=1 from a", "- b x=2"},
		},
		"two git-ssh keys cannot meet": {
			replicas:  []*Replica{held("a", []string{"k1=1:git-ssh"}), held("b", []string{"k2=2:git-ssh"}), held("c", nil)},
			want:      []string{"+ c k1=1 from a"},
			conflicts: 3,
		},
		"a deleted git-ssh key makes room": {
			replicas: []*Replica{held("a", []string{"k2=2:git-ssh"}, "k1=1"), held("b", []string{"k1=1:git-ssh"})},
			want:     []string{"+ b k2=2 from a", "- b k1=1"},
		},
		"prefer a cluster that holds none": {
			replicas:  []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=2"}), held("c", nil)},
			prefer:    "c",
			conflicts: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			plan := PlanSync(tc.replicas, tc.prefer)
			if got := render(plan.Steps); !slices.Equal(got, tc.want) {
				t.Errorf("got steps %q, want %q", got, tc.want)
			}
			if len(plan.Conflicts) != tc.conflicts {
				t.Errorf("got conflicts %q, want %d", plan.Conflicts, tc.conflicts)
			}
		})
	}
}
