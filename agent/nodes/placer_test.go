package nodes

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func addNode(t *testing.T, st *store.Store, id, name string, gpus int, labels map[string]string) {
	t.Helper()
	n := &store.Node{ID: id, Name: name, Runtime: "containerd", Meta: labels,
		Capacity: api.NodeCapacity{GPUs: gpus, CPUs: 8, MemoryBytes: 32 << 30}}
	if err := st.RegisterNode(n, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func submit(t *testing.T, st *store.Store, id string, gpus, retries int, constraints ...api.Constraint) {
	t.Helper()
	run := &store.Run{ID: id, Name: strings.ToLower(id), Owner: "alice", Command: "true", Status: api.RunPending,
		CreatedAt: time.Now().UTC(), GPUs: gpus, Retries: retries, Constraints: constraints, Scheduled: true,
		Events: []store.RunEvent{{Time: time.Now().UTC(), Type: store.EventSubmitted, Message: "submitted"}}}
	if err := st.CreateRun(run); err != nil {
		t.Fatal(err)
	}
}

func runOf(t *testing.T, st *store.Store, id string) *store.Run {
	t.Helper()
	run, err := st.GetRun("alice", id)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func lastEvent(run *store.Run) string { return run.Events[len(run.Events)-1].Message }

func newPlacer(st *store.Store) *Placer {
	return &Placer{Store: st, TTL: time.Minute, Leader: func() bool { return true }, Logger: hclog.NewNullLogger(), waiting: map[string]string{}}
}

// The placer bin-packs GPUs in submit order, says once why a run waits,
// and places it when room comes; a second placer (a new leader) does not
// place a run twice.
func TestPlacerPlaces(t *testing.T) {
	st := openStore(t)
	addNode(t, st, "n2", "gpu-2", 2, nil)
	addNode(t, st, "n4", "gpu-4", 4, map[string]string{"rack": "r1"})
	submit(t, st, "R1", 4, 0)
	submit(t, st, "R2", 2, 0)
	submit(t, st, "R3", 2, 0)
	submit(t, st, "R4", 1, 0, api.Constraint{Key: "rack", Op: "!=", Value: "r1"})
	p := newPlacer(st)
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"R1": "gpu-4", "R2": "gpu-2", "R3": "", "R4": ""} {
		if got := runOf(t, st, id); got.NodeName != want {
			t.Errorf("run %s: placed on %q, want %q", id, got.NodeName, want)
		}
	}
	r3 := runOf(t, st, "R3")
	if !strings.Contains(lastEvent(r3), "waiting for a node: no node has 2 free GPUs") {
		t.Errorf("R3's last event: got %q, want why it waits", lastEvent(r3))
	}
	events := len(r3.Events)
	if err := newPlacer(st).pass(); err != nil {
		t.Fatal(err)
	}
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	if got := runOf(t, st, "R3"); len(got.Events) != events+1 || got.NodeName != "" {
		// The new placer says it once more (it does not know the old
		// one's), the old one not again.
		t.Errorf("R3 after two more passes: %d events on %q, want %d on none", len(got.Events), got.NodeName, events+1)
	}
	if got := runOf(t, st, "R1"); got.Attempt != 1 || strings.Count(eventsText(got), "placed on node") != 1 {
		t.Errorf("R1 after passes of two placers: attempt %d, events %q; want placed once", got.Attempt, eventsText(got))
	}

	// R1 ends on its node: R3 takes its place.
	r1 := runOf(t, st, "R1")
	r1.Status = api.RunCompleted
	if err := st.SaveRun(r1, len(r1.Events), true); err != nil {
		t.Fatal(err)
	}
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	if got := runOf(t, st, "R3"); got.NodeName != "gpu-4" {
		t.Errorf("R3 once R1 ended: on %q, want gpu-4", got.NodeName)
	}
}

// A down node's runs are placed again while they have retries, LOST
// otherwise; a run stopped before it was placed ends STOPPED; a draining
// node takes nothing new.
func TestPlacerLosesAndStops(t *testing.T) {
	st := openStore(t)
	addNode(t, st, "n1", "one", 2, nil)
	submit(t, st, "KEEP", 1, 1)
	submit(t, st, "LOSE", 1, 0)
	p := newPlacer(st)
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	addNode(t, st, "n2", "two", 2, nil)
	if _, err := st.DrainNode("n2", true); err != nil {
		t.Fatal(err)
	}
	n, _ := st.FindNode("n1")
	if err := st.MarkNodeDown("n1", n.LastSeen); err != nil {
		t.Fatal(err)
	}
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	if got := runOf(t, st, "LOSE"); got.Status != api.RunLost || !strings.Contains(got.Error, "node one was lost") {
		t.Errorf("LOSE: got %s (%q), want LOST saying its node was lost", got.Status, got.Error)
	}
	keep := runOf(t, st, "KEEP")
	if keep.Status != api.RunPending || keep.NodeName != "" || !strings.Contains(eventsText(keep), "placing the run again") {
		t.Errorf("KEEP: got %s on %q, events %q; want PENDING on no node (two drains), to be placed again", keep.Status, keep.NodeName, eventsText(keep))
	}
	if _, err := st.DrainNode("n2", false); err != nil {
		t.Fatal(err)
	}
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	if got := runOf(t, st, "KEEP"); got.NodeName != "two" || got.Attempt != 2 {
		t.Errorf("KEEP once two takes runs: on %q attempt %d, want two, attempt 2", got.NodeName, got.Attempt)
	}

	submit(t, st, "BIG", 8, 0)
	if err := st.RequestStop("BIG", "stopped by its owner"); err != nil {
		t.Fatal(err)
	}
	if err := p.pass(); err != nil {
		t.Fatal(err)
	}
	if got := runOf(t, st, "BIG"); got.Status != api.RunStopped || got.EndedAt == nil {
		t.Errorf("BIG stopped before it was placed: got %s, want STOPPED with an end", got.Status)
	}
}

// Feasible refuses at submit only what no node could ever take.
func TestFeasible(t *testing.T) {
	st := openStore(t)
	if err := Feasible(st, &api.CreateRunRequest{GPUs: 8}); err != nil {
		t.Errorf("with no node yet: got %v, want none (clients may join)", err)
	}
	addNode(t, st, "n4", "gpu-4", 4, nil)
	if err := Feasible(st, &api.CreateRunRequest{GPUs: 4}); err != nil {
		t.Errorf("4 GPUs on a node of 4: %v", err)
	}
	err := Feasible(st, &api.CreateRunRequest{GPUs: 5})
	if err == nil || !strings.Contains(err.Error(), "no node of the cluster can ever take this run") {
		t.Errorf("5 GPUs on a node of 4: got %v", err)
	}
}

func eventsText(run *store.Run) string {
	var b strings.Builder
	for _, e := range run.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}
