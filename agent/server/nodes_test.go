package server

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// A plain agent lists its one node, as its run manager has it now, and
// drains nothing: it places no runs.
func TestNodesOfAPlainAgent(t *testing.T) {
	st, s := newHandler(t, t.TempDir())
	s.SetNode(&store.Node{ID: "01NODE", Name: "box", Runtime: "exec"}, false)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := client(t, st, srv, "root")
	list, err := c.ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "box" || list[0].Status != api.NodeReady || list[0].Capacity.CPUs <= 0 {
		t.Fatalf("got %+v, want the agent's own node, ready, with its CPUs", list)
	}
	_, err = c.DrainNode(context.Background(), "box", api.DrainNodeRequest{Enable: true})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "clusters of servers") {
		t.Errorf("drain on a plain agent: got %v, want 400", err)
	}
}

// A server lists the cluster's nodes, free being what the runs placed on
// them leave; only a management token drains, and --stop asks each run
// placed on the node to stop.
func TestNodesOfACluster(t *testing.T) {
	st, s := newHandler(t, t.TempDir())
	s.SetNode(&store.Node{ID: "01SELF", Name: "s1"}, true)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	if err := st.RegisterNode(&store.Node{ID: "01GPU", Name: "gpu-4", Capacity: api.NodeCapacity{GPUs: 4, CPUs: 8, MemoryBytes: 1 << 30}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	run := &store.Run{ID: "01RUN", Name: "train", Owner: "alice", Status: api.RunRunning, CreatedAt: time.Now().UTC(), Scheduled: true,
		GPUs: 3, CPUs: 2, Node: "01GPU", NodeName: "gpu-4", Attempt: 1}
	if err := st.CreateRun(run); err != nil {
		t.Fatal(err)
	}
	root, alice := client(t, st, srv, "root"), client(t, st, srv, "alice")
	list, err := alice.ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Capacity.GPUsFree != 1 || list[0].Capacity.CPUsFree != 6 || list[0].Capacity.ActiveRuns != 1 {
		t.Fatalf("got %+v, want gpu-4 with 1 GPU and 6 CPUs free, 1 run", list)
	}
	var apiErr *api.Error
	if _, err := alice.DrainNode(context.Background(), "gpu-4", api.DrainNodeRequest{Enable: true}); !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
		t.Errorf("drain with alice's token: got %v, want 403", err)
	}
	n, err := root.DrainNode(context.Background(), "gpu-4", api.DrainNodeRequest{Enable: true, Stop: true})
	if err != nil || !n.Drain || n.Capacity.ActiveRuns != 1 {
		t.Fatalf("drain --stop: got %+v, %v", n, err)
	}
	if p, err := st.PlacementOf("01RUN"); err != nil || !strings.Contains(p.Stop, "node gpu-4 is drained") {
		t.Errorf("the run on the drained node: got %+v, %v; want a stop asked", p, err)
	}
	if _, err := root.DrainNode(context.Background(), "nope", api.DrainNodeRequest{Enable: true}); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("drain of an unknown node: got %v, want 404", err)
	}
}
