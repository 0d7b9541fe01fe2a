package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

func TestNodesLifecycle(t *testing.T) {
	s := openStore(t, t.TempDir())
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	gpu := &Node{ID: "n-gpu", Name: "gpu-1", Address: "https://10.0.0.2:7420", Runtime: "containerd",
		Capacity: api.NodeCapacity{GPUs: 4, CPUs: 32, MemoryBytes: 64 << 30}, Class: "gpu", Meta: map[string]string{"rack": "r1"}}
	if err := s.RegisterNode(gpu, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterNode(&Node{ID: "n-cpu", Name: "cpu-1", Runtime: "exec"}, t0); err != nil {
		t.Fatal(err)
	}
	nodes, err := s.ListNodes()
	if err != nil || len(nodes) != 2 || nodes[0].Name != "cpu-1" || nodes[1].Status != api.NodeReady || !nodes[1].LastSeen.Equal(t0) {
		t.Fatalf("ListNodes: got %+v, %v; want cpu-1 then gpu-1, ready, seen at t0", nodes, err)
	}
	if got := nodes[1].Labels(); got["rack"] != "r1" || got["node_class"] != "gpu" || len(got) != 2 {
		t.Errorf("gpu-1 labels: got %v, want rack=r1 and node_class=gpu", got)
	}

	// A heartbeat moves LastSeen; marking down as of an older sighting
	// loses to it.
	t1 := t0.Add(5 * time.Second)
	if err := s.NodeHeartbeat("n-gpu", t1, api.NodeCapacity{GPUs: 4, GPUsFree: 1, ActiveRuns: 2}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.FindNode("n-gpu"); n.Capacity.GPUsFree != 1 || n.Capacity.ActiveRuns != 2 || !n.LastSeen.Equal(t1) {
		t.Errorf("after a heartbeat: got %+v, want 1 GPU free, 2 runs, seen at t1", n)
	}
	// One taken earlier, applied later, changes nothing.
	if err := s.NodeHeartbeat("n-gpu", t0, api.NodeCapacity{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.FindNode("n-gpu"); n.Capacity.GPUs != 4 || !n.LastSeen.Equal(t1) {
		t.Errorf("after an older heartbeat: got %+v, want it ignored", n)
	}
	if err := s.MarkNodeDown("n-gpu", t0); !errors.Is(err, ErrConflict) {
		t.Errorf("mark down as of a sighting a heartbeat followed: got %v, want ErrConflict", err)
	}
	if err := s.MarkNodeDown("n-gpu", t1); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.FindNode("gpu-1"); n.Status != api.NodeDown {
		t.Errorf("after MarkNodeDown: status %q, want down", n.Status)
	}
	if err := s.NodeHeartbeat("n-unknown", t1, api.NodeCapacity{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("heartbeat of an unknown node: got %v, want ErrNotFound", err)
	}

	// Drain holds across a re-registration, which makes the node ready.
	n, err := s.DrainNode("n-gpu", true)
	if err != nil || !n.Drain {
		t.Fatalf("DrainNode: got %+v, %v", n, err)
	}
	if err := s.RegisterNode(gpu, t1.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.FindNode("n-gpu"); !n.Drain || n.Status != api.NodeReady || !n.RegisteredAt.Equal(t0) {
		t.Errorf("after re-registering a drained node: got %+v, want drained, ready, registered at t0", n)
	}
	if n, _ := s.DrainNode("n-gpu", false); n.Drain {
		t.Error("DrainNode(false) left the node draining")
	}

	// Names may repeat; a repeated name is refused as a reference.
	if err := s.RegisterNode(&Node{ID: "n-gpu-new", Name: "gpu-1"}, t1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindNode("gpu-1"); !errors.Is(err, ErrInvalid) {
		t.Errorf("FindNode of a name two nodes have: got %v, want ErrInvalid", err)
	}
	if _, err := s.FindNode("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindNode(nope): got %v, want ErrNotFound", err)
	}
}

// Nodes are written through the log like everything else, and the same on
// every replica.
func TestNodesReplicated(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	openStore(t, dirA).Close()
	if err := os.CopyFS(dirB, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dirB, KeyringFile), 0o600)
	a, b := openStore(t, dirA), openStore(t, dirB)
	a.SetReplicator(&testLog{replicas: []*Store{a, b}})
	now := time.Now().UTC()
	if err := a.RegisterNode(&Node{ID: "n1", Name: "one", Capacity: api.NodeCapacity{GPUs: 2}}, now); err != nil {
		t.Fatal(err)
	}
	n, err := a.DrainNode("n1", true)
	if err != nil || !n.Drain || n.Name != "one" {
		t.Fatalf("DrainNode through the log: got %+v, %v", n, err)
	}
	if err := a.MarkNodeDown("n1", now.Add(-time.Second)); !errors.Is(err, ErrConflict) {
		t.Errorf("a stale mark-down through the log: got %v, want ErrConflict", err)
	}
	sameState(t, "nodes", a, b)
	if n, err := b.FindNode("one"); err != nil || n.Capacity.GPUs != 2 || !n.Drain {
		t.Errorf("the replica's node: got %+v, %v", n, err)
	}
}
