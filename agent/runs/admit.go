package runs

import (
	"context"
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"golang.org/x/sys/unix"
)

// Capacity is what the runs on a node may ask for in total. A zero field
// means the host's own: its CPUs, its memory. GPUs are the runtime's
// devices (runtime.DeviceRuntime).
type Capacity struct {
	CPUs        float64
	MemoryBytes int64
}

// demand is what a run asks for: whole GPUs, CPUs in thousandths (so that
// sums are exact), and bytes of memory.
type demand struct {
	gpus      int
	millicpus int64
	memory    int64
}

func demandOf(gpus int, cpus float64, memory int64) demand {
	return demand{gpus: gpus, millicpus: int64(math.Round(cpus * 1000)), memory: memory}
}

// none reports whether the run asks for nothing that runs share: such a
// run never waits.
func (d demand) none() bool { return d.gpus <= 0 && d.millicpus <= 0 && d.memory <= 0 }

// holding is what an admitted run holds.
type holding struct {
	devices []runtime.Device
	demand
}

// waiter is a run waiting for room; granted receives its devices when it
// is admitted.
type waiter struct {
	id      string
	want    demand
	granted chan []runtime.Device
	// why says what the run waits for, when it waits.
	why string
}

// admission gives runs the node's GPUs, CPUs and memory: a run that asks
// for more than the node has is refused at submit; one that asks for more
// than is free waits, in submit order, until runs that end free room. A
// run is given whole devices that no other active run holds. Strict order
// keeps a large run from being passed for ever by small ones; a run that
// asks for nothing shared does not queue.
type admission struct {
	logger  hclog.Logger
	runtime string
	// gpuRuntime is whether the runtime gives runs GPUs at all.
	gpuRuntime bool
	devices    []runtime.Device
	// millicpus and memory are the totals runs may hold.
	millicpus int64
	memory    int64

	mu      sync.Mutex
	holders map[string]*holding // by run id
	byDev   map[string]string   // device id -> run id
	queue   []*waiter
}

func newAdmission(cfg Config, logger hclog.Logger) *admission {
	a := &admission{
		logger: logger, runtime: cfg.Runtime.Name(),
		millicpus: int64(math.Round(cfg.Capacity.CPUs * 1000)), memory: cfg.Capacity.MemoryBytes,
		holders: map[string]*holding{}, byDev: map[string]string{},
	}
	if dr, ok := cfg.Runtime.(runtime.DeviceRuntime); ok {
		a.devices, a.gpuRuntime = dr.Devices(), true
	}
	if a.millicpus <= 0 {
		a.millicpus = int64(goruntime.NumCPU()) * 1000
	}
	if a.memory <= 0 {
		var si unix.Sysinfo_t
		if err := unix.Sysinfo(&si); err == nil {
			a.memory = int64(si.Totalram) * int64(si.Unit)
		}
	}
	return a
}

// check refuses a run that asks for more than the node has in total.
func (a *admission) check(gpus int, cpus float64, memory int64) error {
	want := demandOf(gpus, cpus, memory)
	var errs []error
	switch {
	case want.gpus > 0 && len(a.devices) == 0:
		why := "the " + a.runtime + " runtime gives runs no GPUs"
		if a.gpuRuntime {
			why = `the agent found none: see cdi_spec_dirs and gpu_devices in its runtime "containerd" block`
		}
		errs = append(errs, fmt.Errorf("the run asks for %s, but this node has none (%s)", count(want.gpus, "GPU"), why))
	case want.gpus > len(a.devices):
		errs = append(errs, fmt.Errorf("the run asks for %s, but this node has %d in total: ask for at most %d", count(want.gpus, "GPU"), len(a.devices), len(a.devices)))
	}
	if want.millicpus > a.millicpus {
		errs = append(errs, fmt.Errorf("the run asks for %s, but this node has %s in total: ask for at most %s", cpuCount(want.millicpus), cpuCount(a.millicpus), formatCPUs(a.millicpus)))
	}
	if a.memory > 0 && want.memory > a.memory {
		errs = append(errs, fmt.Errorf("the run asks for %s of memory, but this node has %s in total: ask for at most %s",
			api.FormatMemory(want.memory), api.FormatMemory(a.memory), api.FormatMemory(a.memory)))
	}
	return errors.Join(errs...)
}

// acquire admits run id, waiting for room while what it wants is not
// free or earlier runs wait, and returns the devices it is given: enqueue
// and then await.
func (a *admission) acquire(ctx context.Context, id string, want demand, waiting func(why string)) ([]runtime.Device, error) {
	return a.await(ctx, a.enqueue(id, want), waiting)
}

// enqueue takes run id's place in line: what it wants is granted at once
// when no run waits and it fits, and it waits behind the others
// otherwise. The manager enqueues a run when it accepts it, so that runs
// are admitted in the order they were submitted, whichever starts first.
func (a *admission) enqueue(id string, want demand) *waiter {
	w := &waiter{id: id, want: want, granted: make(chan []runtime.Device, 1)}
	if want.none() {
		w.granted <- nil
		return w
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) == 0 && a.fitsLocked(want) {
		w.granted <- a.grantLocked(id, want)
		return w
	}
	w.why = a.shortfallLocked(want)
	a.queue = append(a.queue, w)
	return w
}

// await waits until w is granted and returns the devices it is given. It
// calls waiting once, with why, before it waits. When ctx ends first, the
// run leaves the queue and await returns ctx's error.
func (a *admission) await(ctx context.Context, w *waiter, waiting func(why string)) ([]runtime.Device, error) {
	select {
	case devices := <-w.granted:
		return devices, nil
	default:
	}
	waiting(w.why)
	select {
	case devices := <-w.granted:
		if ctx.Err() == nil {
			return devices, nil
		}
		// Granted as it was being stopped: a stop wins.
		w.granted <- devices
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-w.granted:
		// Admitted as it was being stopped: it gives the room back.
		a.releaseLocked(w.id)
	default:
		a.queue = slices.DeleteFunc(a.queue, func(q *waiter) bool { return q == w })
		// The runs behind it may fit now.
		a.admitLocked()
	}
	return nil, ctx.Err()
}

// release gives back what run id holds and admits the runs waiting first
// that now fit. It does nothing for a run that holds nothing.
func (a *admission) release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releaseLocked(id)
}

func (a *admission) releaseLocked(id string) {
	h, ok := a.holders[id]
	if !ok {
		return
	}
	delete(a.holders, id)
	for _, d := range h.devices {
		if a.byDev[d.ID] == id {
			delete(a.byDev, d.ID)
		}
	}
	a.admitLocked()
}

// restore holds again what run held when an earlier agent process
// admitted it: its devices, by id, and its CPUs and memory. The manager
// calls it for each run it adopts, before it admits new runs, and calls
// release when that run ends. A device the node no longer has is left
// out, with a warning.
func (a *admission) restore(run *store.Run) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := &holding{demand: demandOf(0, run.CPUs, run.MemoryBytes)}
	for _, id := range run.Devices {
		i := slices.IndexFunc(a.devices, func(d runtime.Device) bool { return d.ID == id })
		if i < 0 {
			a.logger.Warn("an adopted run holds a GPU this node no longer has", "run_id", run.ID, "device", id)
			continue
		}
		if other, taken := a.byDev[id]; taken {
			a.logger.Warn("two adopted runs hold the same GPU", "run_id", run.ID, "other_run_id", other, "device", id)
		}
		h.devices = append(h.devices, a.devices[i])
		a.byDev[id] = run.ID
	}
	h.gpus = len(h.devices)
	if h.none() {
		return
	}
	a.holders[run.ID] = h
}

// admitLocked admits waiting runs in order while the first fits.
func (a *admission) admitLocked() {
	for len(a.queue) > 0 && a.fitsLocked(a.queue[0].want) {
		w := a.queue[0]
		a.queue = a.queue[1:]
		w.granted <- a.grantLocked(w.id, w.want)
	}
}

// freeLocked returns what no run holds.
func (a *admission) freeLocked() demand {
	free := demand{gpus: len(a.devices) - len(a.byDev), millicpus: a.millicpus, memory: a.memory}
	for _, h := range a.holders {
		free.millicpus -= h.millicpus
		free.memory -= h.memory
	}
	return free
}

func (a *admission) fitsLocked(want demand) bool {
	free := a.freeLocked()
	// A node whose memory is unknown does not count it, as check does not.
	memoryFits := a.memory <= 0 || want.memory <= free.memory
	return want.gpus <= free.gpus && want.millicpus <= free.millicpus && memoryFits
}

// grantLocked gives run id what it wants, the first free devices in the
// node's order among them.
func (a *admission) grantLocked(id string, want demand) []runtime.Device {
	h := &holding{demand: want}
	for _, d := range a.devices {
		if len(h.devices) == want.gpus {
			break
		}
		if _, taken := a.byDev[d.ID]; !taken {
			h.devices = append(h.devices, d)
			a.byDev[d.ID] = id
		}
	}
	a.holders[id] = h
	return slices.Clone(h.devices)
}

// shortfallLocked says why a run waits: what it asks for that is not
// free, as in "waiting for 2 GPUs; 1 free", or the runs ahead of it.
func (a *admission) shortfallLocked(want demand) string {
	free := a.freeLocked()
	var wants, frees []string
	if want.gpus > free.gpus {
		wants, frees = append(wants, count(want.gpus, "GPU")), append(frees, count(max(free.gpus, 0), "GPU"))
	}
	if want.millicpus > free.millicpus {
		wants, frees = append(wants, cpuCount(want.millicpus)), append(frees, cpuCount(max(free.millicpus, 0)))
	}
	if want.memory > free.memory {
		wants, frees = append(wants, api.FormatMemory(want.memory)+" of memory"), append(frees, api.FormatMemory(max(free.memory, 0)))
	}
	switch len(wants) {
	case 0:
		return fmt.Sprintf("waiting behind %s that %s for room", count(len(a.queue), "earlier run"), plural(len(a.queue), "waits", "wait"))
	case 1:
		// "1 free", not "1 GPU free": the unit is the one just named.
		n, _, _ := strings.Cut(frees[0], " ")
		if strings.HasSuffix(wants[0], " of memory") {
			n = frees[0]
		}
		return fmt.Sprintf("waiting for %s; %s free", wants[0], n)
	}
	return fmt.Sprintf("waiting for %s; %s free", strings.Join(wants, " and "), strings.Join(frees, " and "))
}

// snapshot returns the node's capacity and what is free; the caller
// fills in the run counts.
func (a *admission) snapshot() api.NodeCapacity {
	a.mu.Lock()
	defer a.mu.Unlock()
	free := a.freeLocked()
	return api.NodeCapacity{
		GPUs: len(a.devices), GPUsFree: free.gpus,
		CPUs: float64(a.millicpus) / 1000, CPUsFree: float64(free.millicpus) / 1000,
		MemoryBytes: a.memory, MemoryFreeBytes: free.memory,
		WaitingRuns: len(a.queue),
	}
}

// enqueue takes a run's place in line for the node's room.
func (m *Manager) enqueue(ar *activeRun) {
	ar.place = m.admit.enqueue(ar.run.ID, demandOf(ar.run.GPUs, ar.run.CPUs, ar.run.MemoryBytes))
}

// admitRun waits until the run may start, recording why it waits, and
// records the devices it is given.
func (m *Manager) admitRun(ctx context.Context, ar *activeRun) ([]runtime.Device, error) {
	start, waited := time.Now(), false
	devices, err := m.admit.await(ctx, ar.place, func(why string) {
		waited = true
		m.event(ar, store.EventWaiting, why)
	})
	if err != nil {
		return nil, err
	}
	var msgs []string
	if waited {
		msgs = append(msgs, fmt.Sprintf("admitted after waiting %s", time.Since(start).Round(time.Millisecond)))
	}
	if len(devices) > 0 {
		ids := make([]string, len(devices))
		for i, d := range devices {
			ids[i] = d.ID
		}
		m.update(ar, func(r *store.Run) { r.Devices = ids })
		msgs = append(msgs, fmt.Sprintf("holds %s %s", plural(len(ids), "GPU", "GPUs"), strings.Join(ids, ", ")))
	}
	if len(msgs) > 0 {
		m.event(ar, store.EventAdmitted, strings.Join(msgs, "; "))
	}
	return devices, nil
}

// Capacity returns the node's capacity, what of it is free, and how many
// runs are active and waiting.
func (m *Manager) Capacity() api.NodeCapacity {
	c := m.admit.snapshot()
	m.mu.Lock()
	c.ActiveRuns = len(m.active)
	m.mu.Unlock()
	return c
}

func count(n int, unit string) string { return strconv.Itoa(n) + " " + plural(n, unit, unit+"s") }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func formatCPUs(milli int64) string { return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64) }

func cpuCount(milli int64) string {
	if milli == 1000 {
		return "1 CPU"
	}
	return formatCPUs(milli) + " CPUs"
}
