package sched

import (
	"errors"
	"strings"
	"testing"
)

const gib = int64(1) << 30

// node returns a ready, empty containerd node with g GPUs, c CPUs and m GiB.
func node(name string, g int, c, m int64, labels ...string) Node {
	n := Node{
		ID: "id-" + name, Name: name, Runtime: "containerd", Status: StatusReady,
		GPUs: g, FreeGPUs: g, CPUMillis: c * 1000, FreeCPUMillis: c * 1000,
		MemoryBytes: m * gib, FreeMemoryBytes: m * gib, Labels: map[string]string{},
	}
	for i := 0; i+1 < len(labels); i += 2 {
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

// used returns n with g GPUs, c CPUs and m GiB taken by runs.
func used(n Node, g int, c, m int64) Node {
	n.FreeGPUs -= g
	n.FreeCPUMillis -= c * 1000
	n.FreeMemoryBytes -= m * gib
	return n
}

func down(n Node) Node     { n.Status = StatusDown; return n }
func draining(n Node) Node { n.Draining = true; return n }

func TestPlace(t *testing.T) {
	cases := map[string]struct {
		nodes []Node
		req   Request
		want  string
	}{
		"best fit takes the node left with the fewest free GPUs": {
			nodes: []Node{node("a", 8, 64, 512), used(node("b", 8, 64, 512), 6, 0, 0), node("c", 4, 32, 256)},
			req:   Request{GPUs: 2},
			want:  "id-b", // first fit would take a and break a whole 8-GPU node
		},
		"a large run finds the whole node small runs left": {
			nodes: []Node{used(node("a", 8, 64, 512), 1, 0, 0), node("b", 8, 64, 512)},
			req:   Request{GPUs: 8},
			want:  "id-b",
		},
		"a CPU-only run prefers a node without GPUs": {
			nodes: []Node{used(node("gpu", 8, 64, 512), 8, 0, 0), node("cpu", 0, 64, 512)},
			req:   Request{CPUMillis: 4000, MemoryBytes: 8 * gib},
			want:  "id-cpu",
		},
		"a CPU-only run without a GPU-less node takes the fewest free GPUs": {
			nodes: []Node{node("g8", 8, 64, 512), used(node("g4", 4, 64, 512), 3, 0, 0), node("g2", 2, 64, 512)},
			req:   Request{CPUMillis: 4000},
			want:  "id-g4",
		},
		"ties go to the least free CPU": {
			nodes: []Node{node("a", 4, 64, 512), node("b", 4, 32, 512)},
			req:   Request{GPUs: 4},
			want:  "id-b",
		},
		"then the least free memory": {
			nodes: []Node{node("a", 4, 32, 512), node("b", 4, 32, 256)},
			req:   Request{GPUs: 4},
			want:  "id-b",
		},
		"then the name, whatever the order of the nodes": {
			nodes: []Node{node("b", 4, 32, 256), node("a", 4, 32, 256), node("c", 4, 32, 256)},
			req:   Request{GPUs: 1},
			want:  "id-a",
		},
		"down and draining nodes take nothing": {
			nodes: []Node{down(node("a", 8, 64, 512)), draining(node("b", 8, 64, 512)), node("c", 8, 64, 512)},
			req:   Request{GPUs: 8},
			want:  "id-c",
		},
		"the runtime must match": {
			nodes: []Node{func() Node { n := node("a", 2, 8, 64); n.Runtime = "exec"; return n }(), node("b", 8, 64, 512)},
			req:   Request{Runtime: "containerd", GPUs: 1},
			want:  "id-b",
		},
		"an equality constraint": {
			nodes: []Node{node("a", 2, 8, 64, "gpu_type", "l4"), node("b", 8, 64, 512, "gpu_type", "a100")},
			req:   Request{GPUs: 1, Constraints: []Constraint{{"gpu_type", "=", "a100"}}},
			want:  "id-b",
		},
		"an inequality constraint passes a node without the label": {
			nodes: []Node{node("a", 2, 8, 64, "zone", "b"), node("b", 8, 64, 512)},
			req:   Request{GPUs: 1, Constraints: []Constraint{{"zone", "!=", "b"}}},
			want:  "id-b",
		},
		"CPU and memory must fit as well as GPUs": {
			nodes: []Node{used(node("a", 8, 64, 512), 0, 60, 0), used(node("b", 8, 64, 512), 0, 0, 500), node("c", 8, 64, 512)},
			req:   Request{GPUs: 1, CPUMillis: 8000, MemoryBytes: 16 * gib},
			want:  "id-c",
		},
		"fractions of a CPU": {
			nodes: []Node{used(node("a", 0, 1, 4), 0, 0, 0), node("b", 0, 2, 4)},
			req:   Request{CPUMillis: 1500},
			want:  "id-b",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Place(tc.nodes, tc.req)
			if err != nil {
				t.Fatalf("place: %v", err)
			}
			if got != tc.want {
				t.Errorf("got node %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPlaceUnplaceable(t *testing.T) {
	exec := node("e1", 0, 8, 64)
	exec.Runtime = "exec"
	cases := map[string]struct {
		nodes     []Node
		req       Request
		wantNever bool
		want      string
	}{
		"no nodes yet": {
			req:  Request{GPUs: 1},
			want: "no nodes have joined the cluster; start a client agent with `hush agent -client -servers ADDR`",
		},
		"GPUs in use": {
			nodes: []Node{used(node("gpu-1", 8, 64, 512), 6, 0, 0), used(node("gpu-2", 8, 64, 512), 4, 0, 0)},
			req:   Request{GPUs: 8},
			want:  "no node has 8 free GPUs; largest free: 4 on gpu-2",
		},
		"more GPUs than any node has": {
			nodes:     []Node{node("gpu-1", 8, 64, 512), node("gpu-2", 4, 64, 512)},
			req:       Request{GPUs: 16},
			wantNever: true,
			want:      "no node has 16 GPUs; largest: 8 on gpu-1",
		},
		"memory in use": {
			nodes: []Node{used(node("n1", 0, 16, 64), 0, 0, 48), used(node("n3", 0, 16, 64), 0, 0, 32)},
			req:   Request{MemoryBytes: 64 * gib},
			want:  "no node has 64 GiB of memory free; largest free: 32 GiB on n3",
		},
		"more memory than any node has": {
			nodes:     []Node{node("n1", 0, 16, 64), node("n2", 0, 16, 1536)},
			req:       Request{MemoryBytes: 2048 * gib},
			wantNever: true,
			want:      "no node has 2 TiB of memory; largest: 1.5 TiB on n2",
		},
		"CPU in use": {
			nodes: []Node{used(node("n1", 0, 16, 64), 0, 12, 0), used(node("n2", 0, 16, 64), 0, 7, 0)},
			req:   Request{CPUMillis: 10000},
			want:  "no node has 10 CPUs free; largest free: 9 CPUs on n2",
		},
		"more CPU than any node has": {
			nodes:     []Node{node("n1", 0, 16, 64)},
			req:       Request{CPUMillis: 16500},
			wantNever: true,
			want:      "no node has 16.5 CPUs; largest: 16 CPUs on n1",
		},
		"enough of each but never together": {
			nodes: []Node{node("gpu-1", 8, 8, 512), node("cpu-1", 0, 64, 512)},
			req:   Request{GPUs: 4, CPUMillis: 32000},
			// Never: the totals of one node do not hold both.
			wantNever: true,
			want:      "no node has 4 GPUs and 32 CPUs at once; closest: gpu-1 with 8 GPUs and 8 CPUs",
		},
		"not together now": {
			nodes: []Node{used(node("gpu-1", 8, 64, 512), 0, 60, 0), used(node("gpu-2", 8, 64, 512), 6, 0, 0)},
			req:   Request{GPUs: 4, CPUMillis: 8000, MemoryBytes: 64 * gib},
			want:  "no node has 4 GPUs, 8 CPUs and 64 GiB of memory free at once; closest: gpu-1 with 8 GPUs, 4 CPUs and 512 GiB free",
		},
		"no node matches a constraint": {
			nodes:     []Node{node("gpu-1", 8, 64, 512, "gpu_type", "h100"), node("gpu-2", 8, 64, 512, "gpu_type", "l4")},
			req:       Request{GPUs: 1, Constraints: []Constraint{{"gpu_type", "=", "a100"}}},
			wantNever: true,
			want:      "no node matches constraint gpu_type = a100; nodes have gpu_type = h100 and l4",
		},
		"no node has the label": {
			nodes:     []Node{node("gpu-1", 8, 64, 512)},
			req:       Request{Constraints: []Constraint{{"gpu_type", "=", "a100"}}},
			wantNever: true,
			want:      "no node matches constraint gpu_type = a100; no node has label gpu_type",
		},
		"no node matches the constraints together": {
			nodes: []Node{node("a", 8, 64, 512, "gpu_type", "a100", "zone", "1"), node("b", 8, 64, 512, "gpu_type", "l4", "zone", "2")},
			req: Request{Constraints: []Constraint{
				{"gpu_type", "=", "a100"}, {"zone", "=", "2"},
			}},
			wantNever: true,
			want:      "no node matches constraints gpu_type = a100 and zone = 2; those matching the others have zone = 1",
		},
		"the matching node is too small": {
			nodes:     []Node{node("a", 2, 64, 512, "gpu_type", "a100"), node("b", 8, 64, 512, "gpu_type", "l4")},
			req:       Request{GPUs: 4, Constraints: []Constraint{{"gpu_type", "=", "a100"}}},
			wantNever: true,
			want:      "no node has 4 GPUs; largest: 2 on a",
		},
		"no node runs the runtime": {
			nodes:     []Node{node("n1", 0, 8, 64), node("n2", 0, 8, 64)},
			req:       Request{Runtime: "exec"},
			wantNever: true,
			want:      `no node runs runtime "exec"; nodes run containerd`,
		},
		"every node down or draining": {
			nodes: []Node{down(node("n1", 8, 64, 512)), draining(node("n2", 8, 64, 512)), down(node("n3", 8, 64, 512))},
			req:   Request{GPUs: 1},
			want:  "no node is ready: 2 down (n1, n3), 1 draining (n2)",
		},
		"the matching node is down": {
			nodes: []Node{down(node("n1", 8, 64, 512, "gpu_type", "a100")), node("n2", 8, 64, 512), exec},
			req:   Request{GPUs: 1, Constraints: []Constraint{{"gpu_type", "=", "a100"}}},
			want:  "no matching node is ready: 1 down (n1)",
		},
		"one GPU in use everywhere": {
			nodes: []Node{used(node("n1", 2, 64, 512), 2, 0, 0)},
			req:   Request{GPUs: 1},
			want:  "no node has 1 free GPU; largest free: 0 on n1",
		},
		"the free GPUs are on a down node": {
			nodes: []Node{down(node("n1", 8, 64, 512)), used(node("n2", 8, 64, 512), 7, 0, 0)},
			req:   Request{GPUs: 2},
			want:  "no node has 2 free GPUs; largest free: 1 on n2",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			id, err := Place(tc.nodes, tc.req)
			var u *Unplaceable
			if !errors.As(err, &u) {
				t.Fatalf("got node %q, error %v; want an *Unplaceable", id, err)
			}
			if u.Reason != tc.want {
				t.Errorf("got reason %q, want %q", u.Reason, tc.want)
			}
			if u.Never != tc.wantNever {
				t.Errorf("got Never %v, want %v", u.Never, tc.wantNever)
			}
		})
	}
}

func TestPlaceInvalidRequest(t *testing.T) {
	req := Request{GPUs: -1, CPUMillis: -5, Constraints: []Constraint{{"zone", "~", "a"}, {"", "=", "b"}}}
	_, err := Place([]Node{node("n1", 8, 64, 512)}, req)
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("got %v, want ErrInvalidRequest", err)
	}
	var u *Unplaceable
	if errors.As(err, &u) {
		t.Errorf("got an *Unplaceable for an invalid request, want a plain error")
	}
	// Every problem at once, each saying where.
	for _, want := range []string{"gpus: -1", "cpus: -0.005 CPUs", `constraints[0]: operator "~"`, "constraints[1]: the label key is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
}

// TestPlaceDeterministic places the same requests on the same nodes given in
// different orders and wants the same choices, since the leader and a new
// leader replaying the log must agree.
func TestPlaceDeterministic(t *testing.T) {
	base := []Node{node("a", 4, 32, 256), node("b", 4, 32, 256), node("c", 8, 64, 512), node("d", 0, 32, 256), node("e", 2, 16, 128)}
	reqs := []Request{{GPUs: 2}, {GPUs: 1}, {CPUMillis: 2000}, {GPUs: 4}, {GPUs: 2}, {GPUs: 8}, {GPUs: 1}, {CPUMillis: 500}}
	run := func(order []int) []string {
		nodes := make([]Node, len(order))
		for i, j := range order {
			nodes[i] = base[j]
		}
		var got []string
		for _, r := range reqs {
			id, err := Place(nodes, r)
			if err != nil {
				got = append(got, err.Error())
				continue
			}
			got = append(got, id)
			for i := range nodes {
				if nodes[i].ID == id {
					nodes[i].FreeGPUs -= r.GPUs
					nodes[i].FreeCPUMillis -= r.CPUMillis
					nodes[i].FreeMemoryBytes -= r.MemoryBytes
				}
			}
		}
		return got
	}
	want := run([]int{0, 1, 2, 3, 4})
	for _, order := range [][]int{{4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}, {1, 4, 0, 3, 2}} {
		if got := run(order); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("order %v: got %v, want %v", order, got, want)
		}
	}
	// And the choices are the best fits: e (2 GPUs) is filled first, the
	// 8-GPU node c stays whole for the 8-GPU run.
	if want[0] != "id-e" || want[5] != "id-c" {
		t.Errorf("got %v, want e first and c for the 8-GPU run", want)
	}
}
