package runs

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// TestChildRunScope: a run launched by another gets no more than its
// parent was given, whatever it asks for, and reads nothing else.
func TestChildRunScope(t *testing.T) {
	h := newHarness(t)
	h.secret(envSecret("given", "GIVEN", "given-value"))
	h.secret(envSecret("other", "OTHER", "other-value"))
	parent := h.submit("parent", "true")
	h.finish(parent)
	by := Submitter{RunID: parent.ID, Secrets: []string{"given", "deleted-since"}}

	child, err := h.m.Submit("alice", by, &api.CreateRunRequest{Name: "child", Command: `echo "[$GIVEN][${OTHER:-}]"`})
	if err != nil {
		t.Fatal(err)
	}
	run, out := h.finish(child)
	if run.Status != api.RunCompleted || out != "[given-value][]\n" {
		t.Errorf("child that names no secrets: got %s %q, want only its parent's secret", run.Status, out)
	}
	if run.Parent != parent.ID || !slices.Equal(run.SecretLimit, by.Secrets) {
		t.Errorf("child records parent %q limit %v, want %q %v", run.Parent, run.SecretLimit, parent.ID, by.Secrets)
	}

	for name, req := range map[string]*api.CreateRunRequest{
		"names another secret": {Name: "greedy", Command: "true", Secrets: []string{"given", "other"}},
		"asks to write":        {Name: "writer", Command: "true", API: api.RunAPI{Secrets: api.AccessWrite}},
	} {
		if _, err := h.m.Submit("alice", by, req); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: got %v, want ErrForbidden", name, err)
		}
	}
	writer := by
	writer.SecretsWrite = true
	if _, err := h.m.Submit("alice", writer, &api.CreateRunRequest{Name: "writer", Command: "true", API: api.RunAPI{Secrets: api.AccessWrite}}); err != nil {
		t.Errorf("a child of a parent that may write: %v", err)
	}
}

// TestRunTree: a run's token reaches its run and the runs it launched,
// directly or not, and no others.
func TestRunTree(t *testing.T) {
	h := newHarness(t)
	root := h.submit("root", "true")
	sibling := h.submit("sibling", "true")
	child, err := h.m.Submit("alice", Submitter{RunID: root.ID}, &api.CreateRunRequest{Name: "child", Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := h.m.Submit("alice", Submitter{RunID: child.ID}, &api.CreateRunRequest{Name: "grandchild", Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*store.Run{root, sibling, child, grandchild} {
		h.finish(r)
	}
	tests := map[string]struct {
		run      *store.Run
		ancestor string
		want     bool
	}{
		"itself":               {root, root.ID, true},
		"its child":            {child, root.ID, true},
		"its grandchild":       {grandchild, root.ID, true},
		"a sibling":            {sibling, root.ID, false},
		"its parent":           {root, child.ID, false},
		"a child's grandchild": {grandchild, child.ID, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := h.m.Descends(tc.run, tc.ancestor); got != tc.want {
				t.Errorf("Descends(%s, %s) = %v, want %v", tc.run.Name, tc.ancestor, got, tc.want)
			}
		})
	}
	list, err := h.m.List("alice")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range Subtree(list, root.ID) {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "child,grandchild,root" {
		t.Errorf("Subtree(root) = %s, want child,grandchild,root", got)
	}
}
