package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// gpuExec is the exec runtime with GPUs: it records the devices each run
// is given and starts the run without them.
type gpuExec struct {
	*runtime.Exec
	devices []runtime.Device

	mu    sync.Mutex
	given map[string][]string // run id -> device ids
}

func newGPUExec(n int) *gpuExec {
	g := &gpuExec{Exec: runtime.NewExec(hclog.NewNullLogger()), given: map[string][]string{}}
	for i := range n {
		g.devices = append(g.devices, runtime.Device{ID: fmt.Sprint(i), CDI: fmt.Sprintf("example.com/gpu=%d", i)})
	}
	return g
}

func (g *gpuExec) Devices() []runtime.Device { return g.devices }

func (g *gpuExec) Start(ctx context.Context, spec *runtime.Spec) (runtime.Task, error) {
	g.mu.Lock()
	for _, d := range spec.Devices {
		g.given[spec.ID] = append(g.given[spec.ID], d.ID)
	}
	g.mu.Unlock()
	s := *spec
	s.GPUs, s.Devices = 0, nil
	return g.Exec.Start(ctx, &s)
}

func (g *gpuExec) givenTo(id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.given[id]
}

// newTestAdmission is the admission of a node with gpus GPUs, cpus CPUs
// and memory bytes.
func newTestAdmission(gpus int, cpus float64, memory int64) *admission {
	return newAdmission(Config{Runtime: newGPUExec(gpus), Capacity: Capacity{CPUs: cpus, MemoryBytes: memory}}, hclog.NewNullLogger())
}

func TestAdmissionCheck(t *testing.T) {
	tests := map[string]struct {
		a      *admission
		gpus   int
		cpus   float64
		memory int64
		want   string
	}{
		"fits":            {a: newTestAdmission(2, 4, 8<<30), gpus: 2, cpus: 4, memory: 8 << 30},
		"too many gpus":   {a: newTestAdmission(2, 4, 8<<30), gpus: 3, want: "the run asks for 3 GPUs, but this node has 2 in total: ask for at most 2"},
		"no gpus found":   {a: newTestAdmission(0, 4, 8<<30), gpus: 1, want: `the run asks for 1 GPU, but this node has none (the agent found none: see cdi_spec_dirs and gpu_devices in its runtime "containerd" block)`},
		"no gpu runtime":  {a: newAdmission(Config{Runtime: runtime.NewExec(hclog.NewNullLogger())}, hclog.NewNullLogger()), gpus: 1, want: "the run asks for 1 GPU, but this node has none (the exec runtime gives runs no GPUs)"},
		"too many cpus":   {a: newTestAdmission(0, 4, 8<<30), cpus: 4.5, want: "the run asks for 4.5 CPUs, but this node has 4 CPUs in total: ask for at most 4"},
		"too much memory": {a: newTestAdmission(0, 4, 8<<30), memory: 9 << 30, want: "the run asks for 9GiB of memory, but this node has 8GiB in total: ask for at most 8GiB"},
		"all at once": {a: newTestAdmission(1, 1, 1<<30), gpus: 2, cpus: 2, memory: 3 << 29,
			want: "the run asks for 2 GPUs, but this node has 1 in total: ask for at most 1\nthe run asks for 2 CPUs, but this node has 1 CPU in total: ask for at most 1\nthe run asks for 1.5GiB of memory, but this node has 1GiB in total: ask for at most 1GiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.a.check(tc.gpus, tc.cpus, tc.memory)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// acquired is what one acquire returned, and why it waited.
type acquired struct {
	devices []string
	err     error
}

// acquireAsync admits run id in the background and returns why it waits
// (or "" if it did not) and a channel of its result.
func acquireAsync(t *testing.T, ctx context.Context, a *admission, id string, want demand) (string, <-chan acquired) {
	t.Helper()
	why := make(chan string, 1)
	out := make(chan acquired, 1)
	go func() {
		devs, err := a.acquire(ctx, id, want, func(w string) { why <- w })
		ids := []string{}
		for _, d := range devs {
			ids = append(ids, d.ID)
		}
		out <- acquired{ids, err}
		close(why)
	}()
	select {
	case w := <-why:
		return w, out
	case r := <-out:
		// Admitted at once: hand the result on.
		again := make(chan acquired, 1)
		again <- r
		return "", again
	case <-time.After(5 * time.Second):
		t.Fatalf("acquire %s neither returned nor waited", id)
		return "", nil
	}
}

func wantGranted(t *testing.T, id string, ch <-chan acquired, want ...string) {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil || !slices.Equal(r.devices, want) {
			t.Errorf("run %s got %v, %v; want devices %v", id, r.devices, r.err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("run %s was not admitted", id)
	}
}

func wantWaiting(t *testing.T, id string, ch <-chan acquired) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("run %s was admitted (%v, %v); want it to wait", id, r.devices, r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestAdmissionFIFO: runs are admitted in submit order, each with whole
// devices no other holds, and a run that fits waits behind an earlier one
// that does not; a run that asks for nothing never waits.
func TestAdmissionFIFO(t *testing.T) {
	a := newTestAdmission(2, 8, 16<<30)
	ctx := context.Background()

	why, one := acquireAsync(t, ctx, a, "one", demand{gpus: 1})
	if why != "" {
		t.Errorf("the first run waited: %s", why)
	}
	wantGranted(t, "one", one, "0")

	why, two := acquireAsync(t, ctx, a, "two", demand{gpus: 2})
	if why != "waiting for 2 GPUs; 1 free" {
		t.Errorf("got %q, want waiting for 2 GPUs; 1 free", why)
	}
	why, three := acquireAsync(t, ctx, a, "three", demand{gpus: 1})
	if why != "waiting behind 1 earlier run that waits for room" {
		t.Errorf("got %q, want it behind the earlier run", why)
	}
	wantWaiting(t, "three", three)
	if _, none := acquireAsync(t, ctx, a, "nothing", demand{}); true {
		wantGranted(t, "nothing", none)
	}
	if c := a.snapshot(); c.GPUs != 2 || c.GPUsFree != 1 || c.WaitingRuns != 2 {
		t.Errorf("got capacity %+v, want 1 of 2 GPUs free and 2 runs waiting", c)
	}

	a.release("one")
	wantGranted(t, "two", two, "0", "1")
	wantWaiting(t, "three", three)
	a.release("two")
	wantGranted(t, "three", three, "0")
	a.release("three")
	a.release("three") // harmless
	if c := a.snapshot(); c.GPUsFree != 2 || c.CPUsFree != 8 || c.MemoryFreeBytes != 16<<30 || c.WaitingRuns != 0 {
		t.Errorf("got capacity %+v, want everything free", c)
	}
}

// TestAdmissionStopWhileWaiting: a waiting run that is stopped leaves the
// queue, and those behind it that now fit are admitted.
func TestAdmissionStopWhileWaiting(t *testing.T) {
	a := newTestAdmission(2, 8, 16<<30)
	bg := context.Background()
	_, one := acquireAsync(t, bg, a, "one", demand{gpus: 1})
	wantGranted(t, "one", one, "0")
	ctx, cancel := context.WithCancel(bg)
	_, big := acquireAsync(t, ctx, a, "big", demand{gpus: 2})
	_, small := acquireAsync(t, bg, a, "small", demand{gpus: 1})
	wantWaiting(t, "small", small)
	cancel()
	select {
	case r := <-big:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("got %v, want the stopped run's wait cancelled", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stopped run still waits")
	}
	wantGranted(t, "small", small, "1")
	if c := a.snapshot(); c.WaitingRuns != 0 || c.GPUsFree != 0 {
		t.Errorf("got capacity %+v, want no run waiting and no GPU free", c)
	}
}

// TestAdmissionCPUsAndMemory: CPUs and memory are held like GPUs, and the
// wait says what is short.
func TestAdmissionCPUsAndMemory(t *testing.T) {
	a := newTestAdmission(1, 4, 8<<30)
	bg := context.Background()
	_, first := acquireAsync(t, bg, a, "first", demandOf(0, 2.5, 6<<30))
	wantGranted(t, "first", first)
	tests := map[string]struct {
		want demand
		why  string
	}{
		"cpus":   {demandOf(0, 2, 0), "waiting for 2 CPUs; 1.5 free"},
		"memory": {demandOf(0, 0, 4<<30), "waiting for 4GiB of memory; 2GiB free"},
		"both":   {demandOf(1, 1.6, 3<<30), "waiting for 1.6 CPUs and 3GiB of memory; 1.5 CPUs and 2GiB free"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			why, _ := acquireAsync(t, ctx, a, name, tc.want)
			if why != tc.why {
				t.Errorf("got %q, want %q", why, tc.why)
			}
		})
	}
}

// TestAdmissionRestore: a run adopted after a restart keeps its devices,
// CPUs and memory; new runs get the others, and its release frees them.
func TestAdmissionRestore(t *testing.T) {
	a := newTestAdmission(3, 4, 8<<30)
	a.restore(&store.Run{ID: "old", GPUs: 2, Devices: []string{"1", "gone"}, CPUs: 1, MemoryBytes: 1 << 30})
	if c := a.snapshot(); c.GPUsFree != 2 || c.CPUsFree != 3 || c.MemoryFreeBytes != 7<<30 {
		t.Errorf("got capacity %+v, want GPU 1, 1 CPU and 1GiB held", c)
	}
	_, two := acquireAsync(t, context.Background(), a, "new", demand{gpus: 2})
	wantGranted(t, "new", two, "0", "2")
	_, more := acquireAsync(t, context.Background(), a, "more", demand{gpus: 1})
	wantWaiting(t, "more", more)
	a.release("old")
	wantGranted(t, "more", more, "1")
}

// TestGPUAdmission runs the manager on a node of 2 GPUs: 3 are refused at
// submit; a run of 2 waits PENDING, saying why, until a run of 1 ends; a
// waiting run can be stopped and deleted; each run is given its own
// devices, recorded on the run.
func TestGPUAdmission(t *testing.T) {
	h := newHarness(t)
	h.m.Shutdown(context.Background())
	rt := newGPUExec(2)
	m, err := NewManager(context.Background(), Config{
		Store: h.store, Runtime: rt, LogDir: filepath.Join(h.dataDir, "logs"), StateDir: h.state, KeyDir: h.state + "-keys",
		HushBinary: os.Args[0], AgentAddr: "http://127.0.0.1:1", StopGrace: 500 * time.Millisecond,
		Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	gpus := func(n int) func(*api.CreateRunRequest) { return func(r *api.CreateRunRequest) { r.GPUs = n } }

	_, err = m.Submit("alice", Submitter{}, &api.CreateRunRequest{Name: "three", Command: "true", GPUs: 3})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "the run asks for 3 GPUs, but this node has 2 in total") {
		t.Errorf("got %v, want the run of 3 GPUs refused", err)
	}

	gate := filepath.Join(t.TempDir(), "gate")
	one := h.submit("one", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done", gate), gpus(1))
	waitStatus(t, m, one.ID, api.RunRunning)
	two := h.submit("two", "echo two", gpus(2))
	doomed := h.submit("doomed", "echo never", gpus(1))
	waitEvent(t, m, two.ID, "waiting for 2 GPUs; 1 free")
	waitEvent(t, m, doomed.ID, "waiting behind 1 earlier run that waits for room")
	if c := m.Capacity(); c.GPUs != 2 || c.GPUsFree != 1 || c.ActiveRuns != 3 || c.WaitingRuns != 2 {
		t.Errorf("got capacity %+v, want 1 of 2 GPUs free, 3 active runs, 2 waiting", c)
	}
	if r, _ := m.Get("alice", two.ID); r.Status != api.RunPending {
		t.Errorf("the waiting run is %s, want PENDING", r.Status)
	}

	if _, err := m.Stop("alice", "doomed"); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.finish(doomed); r.Status != api.RunStopped || len(rt.givenTo(doomed.ID)) != 0 {
		t.Errorf("the stopped waiting run is %s with devices %v, want STOPPED with none", r.Status, rt.givenTo(doomed.ID))
	}
	if err := m.Delete(context.Background(), "alice", "doomed"); err != nil {
		t.Errorf("delete the stopped waiting run: %v", err)
	}

	os.WriteFile(gate, nil, 0o600)
	r1, _ := h.finish(one)
	r2, out := h.finish(two)
	if r1.Status != api.RunCompleted || r2.Status != api.RunCompleted || out != "two\n" {
		t.Fatalf("got %s and %s (%q), want both completed", r1.Status, r2.Status, out)
	}
	if got := rt.givenTo(one.ID); !slices.Equal(got, []string{"0"}) || !slices.Equal(r1.Devices, got) {
		t.Errorf("run one was given %v, recorded %v; want [0]", got, r1.Devices)
	}
	if got := rt.givenTo(two.ID); !slices.Equal(got, []string{"0", "1"}) || !slices.Equal(r2.Devices, got) {
		t.Errorf("run two was given %v, recorded %v; want [0 1]", got, r2.Devices)
	}
	if !slices.ContainsFunc(r2.Events, func(e store.RunEvent) bool {
		return e.Type == store.EventAdmitted && strings.HasPrefix(e.Message, "admitted after waiting ") && strings.HasSuffix(e.Message, "; holds GPUs 0, 1")
	}) {
		t.Errorf("run two's events lack its admission: %+v", r2.Events)
	}
	// The record in the store, too, names its devices.
	if stored, err := h.store.GetRun("alice", two.ID); err != nil || !slices.Equal(stored.Devices, []string{"0", "1"}) {
		t.Errorf("stored run two holds %v (%v), want [0 1]", stored.Devices, err)
	}
	// A run leaves the active set just after its final status is saved.
	for deadline := time.Now().Add(5 * time.Second); m.Capacity().ActiveRuns > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if c := m.Capacity(); c.GPUsFree != 2 || c.ActiveRuns != 0 {
		t.Errorf("got capacity %+v after the runs, want both GPUs free and no run", c)
	}
}

func waitEvent(t *testing.T, m *Manager, id, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := m.Get("alice", id)
		if err != nil {
			t.Fatal(err)
		}
		if hasEventMsg(r, store.EventWaiting, msg) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s lacks event %q: %+v", r.Name, msg, r.Events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasEventMsg(r *store.Run, typ store.EventType, msg string) bool {
	return slices.ContainsFunc(r.Events, func(e store.RunEvent) bool { return e.Type == typ && e.Message == msg })
}
