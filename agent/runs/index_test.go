package runs

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// storeRuns records n ended runs of owner, named prefix0, prefix1, ...
func storeRuns(t *testing.T, st *store.Store, owner, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now().UTC()
			errs <- st.CreateRun(&store.Run{
				ID: fmt.Sprintf("01%s%s%05d", strings.ToUpper(owner), strings.ToUpper(prefix), i), Name: fmt.Sprintf("%s%d", prefix, i),
				Owner: owner, Command: "true", Status: api.RunCompleted, CreatedAt: now,
				Events: []store.RunEvent{{Time: now, Type: store.EventSubmitted, Message: "submitted"}, {Time: now, Type: store.EventExited, Message: "exited with code 0"}},
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLookupOpensOneRun: finding a run by name or by id, and naming a new
// run, open no other run: they allocate as much among 1,000 stored runs
// as among 1. (Before runs had a name index, each listed and opened every
// run of the owner.)
func TestLookupOpensOneRun(t *testing.T) {
	h := newHarness(t)
	storeRuns(t, h.store, "alice", "target", 1)
	const id = "01ALICETARGET00000"
	measure := func() (byName, byID, name float64) {
		byName = testing.AllocsPerRun(20, func() {
			if _, err := h.m.Get("alice", "target0"); err != nil {
				t.Fatal(err)
			}
		})
		byID = testing.AllocsPerRun(20, func() {
			if _, err := h.m.Get("alice", id); err != nil {
				t.Fatal(err)
			}
		})
		name = testing.AllocsPerRun(20, func() {
			if _, err := h.m.uniqueName("alice", "target0"); err != nil {
				t.Fatal(err)
			}
		})
		return byName, byID, name
	}
	name1, id1, unique1 := measure()
	storeRuns(t, h.store, "alice", "r", 500)
	storeRuns(t, h.store, "bob", "r", 500)
	name2, id2, unique2 := measure()
	// Opening one more run costs dozens of allocations; the slack is for
	// deeper B+trees.
	if name2 > name1+10 || id2 > id1+10 || unique2 > unique1+10 {
		t.Errorf("allocations by name, by id, for a new name: %.0f, %.0f, %.0f among 1,001 runs, %.0f, %.0f, %.0f among 1; want about the same",
			name2, id2, unique2, name1, id1, unique1)
	}
}

// TestUniqueNameAmongStoredRuns: a name taken by a stored run, and not
// opened to be checked, gets a suffix.
func TestUniqueNameAmongStoredRuns(t *testing.T) {
	h := newHarness(t)
	storeRuns(t, h.store, "alice", "hello", 1)
	run := h.submit("hello0", "true")
	if run.Name == "hello0" || !strings.HasPrefix(run.Name, "hello0-") {
		t.Errorf("got name %s, want hello0 with a suffix", run.Name)
	}
	if got, err := h.m.Get("alice", "hello0"); err != nil || got.ID != "01ALICEHELLO00000" {
		t.Errorf("got %v, %v; want the stored run", got, err)
	}
}

// TestEndedRunIsSavedWhole: once a run has left the active set (a watch
// for its end answers), its record holds its final state and every event
// it had, once each and in order, though they were saved apart from the
// work that made them.
func TestEndedRunIsSavedWhole(t *testing.T) {
	h := newHarness(t)
	run := h.submit("whole", "echo hi")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	live, err := h.m.Watch(ctx, "alice", run.ID, math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := h.store.GetRun("alice", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Status != api.RunCompleted || saved.ExitCode == nil || *saved.ExitCode != 0 || saved.StartedAt == nil || saved.EndedAt == nil {
		t.Errorf("saved %s, exit code %v; want COMPLETED with code 0, a start and an end", saved.Status, derefInt(saved.ExitCode))
	}
	var types []string
	for _, e := range saved.Events {
		types = append(types, string(e.Type))
	}
	got := strings.Join(types, " ")
	if !strings.HasPrefix(got, "submitted ") || !strings.HasSuffix(got, " exited") || strings.Count(got, "started") != 1 || !strings.Contains(got, " secrets ") {
		t.Errorf("saved events %q, want submitted first, secrets, started once, exited last", got)
	}
	if len(live.Events) != len(saved.Events) {
		t.Errorf("watched %d events, saved %d", len(live.Events), len(saved.Events))
	}
}

// TestConcurrentSubmitsGetDistinctNames: runs of one name submitted at
// once each get a name of their own, the first the name as given.
func TestConcurrentSubmitsGetDistinctNames(t *testing.T) {
	h := newHarness(t)
	const n = 16
	names := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := h.m.Submit("alice", Submitter{}, &api.CreateRunRequest{Name: "same", Command: "true"})
			if err != nil {
				t.Error(err)
				return
			}
			names <- run.Name
		}()
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for name := range names {
		if seen[name] {
			t.Errorf("name %s given twice", name)
		}
		seen[name] = true
	}
	if len(seen) != n || !seen["same"] {
		t.Errorf("got names %v, want %d distinct, one of them same", seen, n)
	}
	for name := range seen {
		if run, err := h.m.Get("alice", name); err != nil || run.Name != name {
			t.Errorf("get %s: got %v, %v", name, run, err)
		}
	}
}
