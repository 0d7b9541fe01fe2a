package fleet

import (
	"slices"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/spec"
)

func TestPlanApply(t *testing.T) {
	declared := []*spec.DeclaredSecret{{Request: &api.CreateSecretRequest{Name: "x", Type: api.TypeEnv}}}
	tests := map[string]struct {
		replicas []*Replica
		// differ lists the clusters whose x differs from the file.
		differ         []string
		replace, prune bool
		// want is each step as "KIND CLUSTER NAME", sorted; ids are new
		// unless keep says which id a create reuses.
		want      []string
		keep      string
		conflicts int
	}{
		"new everywhere": {
			replicas: []*Replica{held("a", nil), held("b", nil)},
			want:     []string{"+ a x", "+ b x"},
		},
		"matches": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=1"})},
		},
		"missing on one cluster keeps the id": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", nil)},
			want:     []string{"+ b x"},
			keep:     "1",
		},
		"deleted on one cluster is recreated under a new id": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", nil, "x=1")},
			want:     []string{"+ b x", "~ a x"},
		},
		"different ids are recreated under one": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", []string{"x=2"})},
			want:     []string{"~ a x", "~ b x"},
		},
		"changed content waits for --replace": {
			replicas:  []*Replica{held("a", []string{"x=1"}), held("b", nil)},
			differ:    []string{"a"},
			conflicts: 1,
		},
		"changed content with --replace": {
			replicas: []*Replica{held("a", []string{"x=1"}), held("b", nil)},
			differ:   []string{"a"},
			replace:  true,
			want:     []string{"+ b x", "~ a x"},
		},
		"undeclared is kept": {
			replicas: []*Replica{held("a", []string{"x=1", "y=2"}), held("b", []string{"x=1"})},
		},
		"undeclared is pruned": {
			replicas: []*Replica{held("a", []string{"x=1", "y=2"}), held("b", []string{"x=1"})},
			prune:    true,
			want:     []string{"- a y"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			same := map[string]map[string]bool{}
			for _, r := range tc.replicas {
				same[r.Cluster] = map[string]bool{}
				for n := range r.Secrets {
					same[r.Cluster][n] = !slices.Contains(tc.differ, r.Cluster)
				}
			}
			plan := PlanApply(declared, tc.replicas, same, &ApplyOptions{File: "s.hcl", Replace: tc.replace, Prune: tc.prune})
			var got []string
			ids := map[string]bool{}
			for _, s := range plan.Steps {
				got = append(got, s.Kind.Symbol()+" "+s.Cluster+" "+s.Name)
				if s.Kind != StepDelete {
					ids[s.ID] = true
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got steps %q, want %q", got, tc.want)
			}
			if len(ids) > 1 {
				t.Errorf("got ids %v, want one id on every cluster", ids)
			}
			if tc.keep != "" && !ids[tc.keep] {
				t.Errorf("got ids %v, want the existing %s", ids, tc.keep)
			}
			if len(plan.Conflicts) != tc.conflicts {
				t.Errorf("got conflicts %q, want %d", plan.Conflicts, tc.conflicts)
			}
		})
	}
}
