package store

import (
	"errors"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// A scheduled run's writers cannot undo each other: the placer places a
// run once, a node writes it only while it is placed there, and a
// server's write made from an older state is refused.
func TestPlacementGuards(t *testing.T) {
	s := openStore(t, t.TempDir())
	run := testRun("alice", "01RUN", "train")
	run.Scheduled, run.GPUs, run.Retries = true, 2, 1
	run.Constraints = []api.Constraint{{Key: "node_class", Op: "=", Value: "gpu"}}
	if err := s.CreateRun(run); err != nil {
		t.Fatal(err)
	}
	p, err := s.PlacementOf(run.ID)
	if err != nil || p.Node != "" || p.Version != 1 || p.GPUs != 2 || len(p.Constraints) != 1 || p.Owner != "alice" {
		t.Fatalf("a new scheduled run's placement: got %+v, %v", p, err)
	}
	changed := s.Changed()

	// The placer places it, as of version 1.
	placed := run.Clone()
	placed.Node, placed.NodeName, placed.Attempt = "n1", "gpu-1", 1
	placed.Events = append(placed.Events, RunEvent{Time: time.Now().UTC(), Type: EventPlaced, Message: "placed on gpu-1"})
	if err := s.SaveRunAs(placed, 1, Guard{Version: 1}, &Move{Node: "n1", NodeName: "gpu-1", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed did not fire on a write")
	}
	if err := s.SaveRunAs(placed, 1, Guard{Version: 1}, &Move{Node: "n2", Attempt: 1}); !errors.Is(err, ErrConflict) {
		t.Errorf("placing it again as of version 1: got %v, want ErrConflict", err)
	}

	// Its node writes it; another node, or an older attempt, cannot.
	placed.Status = api.RunRunning
	if err := s.SaveRun(placed, 2, true); err != nil {
		t.Fatalf("the node's save: %v", err)
	}
	other := placed.Clone()
	other.Node = "n2"
	if err := s.SaveRun(other, 2, true); !errors.Is(err, ErrConflict) {
		t.Errorf("a save from a node the run is not on: got %v, want ErrConflict", err)
	}
	if err := s.RequestStop(run.ID, "stopped by its owner"); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.PlacementOf(run.ID); p.Stop != "stopped by its owner" || p.Version != 3 || p.Node != "n1" {
		t.Errorf("after a stop request: got %+v, want the reason, version 3, on n1", p)
	}

	// The node is lost: the run goes back in line, and the node's later
	// saves are refused.
	back := placed.Clone()
	back.Node, back.NodeName, back.Status = "", "", api.RunPending
	if err := s.SaveRunAs(back, 2, Guard{Node: "n1", Attempt: 1, Version: 2}, &Move{Attempt: 1}); !errors.Is(err, ErrConflict) {
		t.Errorf("a requeue as of version 2 after the node's write made 3: got %v, want ErrConflict", err)
	}
	if err := s.SaveRunAs(back, 2, Guard{Node: "n1", Attempt: 1, Version: 3}, &Move{Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRun(placed, 2, true); !errors.Is(err, ErrConflict) {
		t.Errorf("the lost node's save after the requeue: got %v, want ErrConflict", err)
	}

	// Ending it takes it out of the index and revokes its tokens.
	if _, _, err := s.IssueRunToken("alice", run.ID, nil, false); err != nil {
		t.Fatal(err)
	}
	lost := back.Clone()
	lost.Status = api.RunLost
	if err := s.SaveRunAs(lost, 2, Guard{Attempt: 1, Version: 4}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PlacementOf(run.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a done run's placement: got %v, want ErrNotFound", err)
	}
	toks, err := s.ListTokens("alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.RunID == run.ID {
			t.Errorf("the LOST run's token %s is still there", tok.Accessor)
		}
	}
	if got, _ := s.GetRun("alice", run.ID); got.Status != api.RunLost || got.Attempt != 1 {
		t.Errorf("the run's record: got %s attempt %d, want LOST attempt 1", got.Status, got.Attempt)
	}
}
