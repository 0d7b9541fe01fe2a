package sched

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchNodes is 1,000 ready nodes of 0, 2, 4 or 8 GPUs in a seeded random
// mix, with CPU and memory in proportion, as a GPU cluster grows by
// purchases of different sizes.
func benchNodes() []Node {
	r := rand.New(rand.NewPCG(15, 2))
	sizes := []int{0, 2, 4, 8}
	nodes := make([]Node, 1000)
	for i := range nodes {
		g := sizes[r.IntN(len(sizes))]
		c, m := int64(64), int64(256)
		if g > 0 {
			c, m = int64(16*g), int64(128*g)
		}
		nodes[i] = node(fmt.Sprintf("n%04d", i), g, c, m)
	}
	return nodes
}

// benchRequests is 10,000 runs of 1, 2, 4 or 8 GPUs or none, in a seeded
// random order; a GPU run asks for half its GPUs' share of CPU and memory.
func benchRequests() []Request {
	r := rand.New(rand.NewPCG(15, 3))
	sizes := []int{0, 1, 2, 4, 8}
	reqs := make([]Request, 10000)
	for i := range reqs {
		g := sizes[r.IntN(len(sizes))]
		reqs[i] = Request{Runtime: "containerd", GPUs: g, CPUMillis: 4000, MemoryBytes: 16 * gib}
		if g > 0 {
			reqs[i].CPUMillis, reqs[i].MemoryBytes = int64(8000*g), int64(g)*64*gib
		}
	}
	return reqs
}

// firstFit is the plain scheduler the benchmark compares Place with: the
// first node, in the order given, that can take the run.
func firstFit(nodes []Node, req Request) (string, error) {
	for i := range nodes {
		if fitsNow(&nodes[i], &req) {
			return nodes[i].ID, nil
		}
	}
	return "", explain(nodes, req)
}

// fillStats is what one simulation measured.
type fillStats struct {
	// placed counts the runs placed; placed8 those of 8 GPUs, the ones
	// fragmentation hurts.
	placed, placed8 int
	// fragAtFail is the share of all GPUs that were free but on nodes with
	// fewer than 8 free, so no 8-GPU run could use them, when a run first
	// failed for lack of GPUs; utilAtFail the share in use then.
	fragAtFail, utilAtFail float64
	// utilEnd is the share of GPUs in use after every run was tried.
	utilEnd float64
}

// fill places every request in turn on a fresh copy of nodes, as the leader
// would, and never frees anything, so the cluster fills.
func fill(b *testing.B, base []Node, reqs []Request, place func([]Node, Request) (string, error)) fillStats {
	nodes := append([]Node(nil), base...)
	index := make(map[string]int, len(nodes))
	total := 0
	for i, n := range nodes {
		index[n.ID] = i
		total += n.GPUs
	}
	gpuUse := func() (used, stranded int) {
		for _, n := range nodes {
			used += n.GPUs - n.FreeGPUs
			if n.FreeGPUs < 8 {
				stranded += n.FreeGPUs
			}
		}
		return used, stranded
	}
	var s fillStats
	failed := false
	for _, req := range reqs {
		id, err := place(nodes, req)
		if err != nil {
			var u *Unplaceable
			if !errors.As(err, &u) {
				b.Fatalf("place: %v", err)
			}
			if !failed && req.GPUs > 0 {
				failed = true
				used, stranded := gpuUse()
				s.fragAtFail, s.utilAtFail = float64(stranded)/float64(total), float64(used)/float64(total)
			}
			continue
		}
		s.placed++
		if req.GPUs == 8 {
			s.placed8++
		}
		n := &nodes[index[id]]
		n.FreeGPUs -= req.GPUs
		n.FreeCPUMillis -= req.CPUMillis
		n.FreeMemoryBytes -= req.MemoryBytes
	}
	used, stranded := gpuUse()
	if !failed {
		s.fragAtFail, s.utilAtFail = float64(stranded)/float64(total), float64(used)/float64(total)
	}
	s.utilEnd = float64(used) / float64(total)
	return s
}

// BenchmarkPlace places 10,000 runs on 1,000 simulated nodes, best fit (Place)
// against first fit. One op is the whole simulation; placements/s counts
// every call, including those that fail once the cluster is full.
func BenchmarkPlace(b *testing.B) {
	base, reqs := benchNodes(), benchRequests()
	for name, place := range map[string]func([]Node, Request) (string, error){
		"best-fit":  Place,
		"first-fit": firstFit,
	} {
		b.Run(name, func(b *testing.B) {
			var s fillStats
			ops := 0
			for b.Loop() {
				s = fill(b, base, reqs, place)
				ops++
			}
			b.ReportMetric(float64(ops*len(reqs))/b.Elapsed().Seconds(), "placements/s")
			b.ReportMetric(float64(s.placed), "placed")
			b.ReportMetric(float64(s.placed8), "placed-8gpu")
			b.ReportMetric(s.fragAtFail, "fragmented")
			b.ReportMetric(s.utilAtFail, "gpu-used-at-fail")
			b.ReportMetric(s.utilEnd, "gpu-used-end")
		})
	}
}

// BenchmarkPlaceOne is one successful placement among 1,000 nodes, the
// cost the leader pays per run while the cluster has room.
func BenchmarkPlaceOne(b *testing.B) {
	nodes := benchNodes()
	req := Request{Runtime: "containerd", GPUs: 2, CPUMillis: 16000, MemoryBytes: 128 * gib}
	for b.Loop() {
		if _, err := Place(nodes, req); err != nil {
			b.Fatalf("place: %v", err)
		}
	}
}
