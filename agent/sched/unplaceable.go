package sched

import (
	"fmt"
	"sort"
	"strings"
)

// Unplaceable is the error Place returns when no node can take a run.
type Unplaceable struct {
	// Reason says why, e.g. "no node has 8 free GPUs; largest free: 4 on
	// gpu-2". It names nodes and sizes, never secret values.
	Reason string
	// Never is true when no node could take the run even with nothing else
	// on it: no node runs its runtime, matches its constraints, or has
	// enough GPUs, CPUs or memory in total. The server refuses such a run at
	// submit instead of leaving it pending. A cluster without any node is not
	// Never: its clients may not have joined yet.
	Never bool
}

// Error returns the reason.
func (e *Unplaceable) Error() string { return e.Reason }

// explain says why no node fits req. It repeats the filters of Place one at
// a time, so that it can name the first one that leaves no node; it runs only
// when placement fails, so it may be slower than Place.
func explain(nodes []Node, req Request) *Unplaceable {
	if len(nodes) == 0 {
		return &Unplaceable{Reason: "no nodes have joined the cluster; start a client agent with `hush agent -client -servers ADDR`"}
	}
	set := make([]*Node, 0, len(nodes))
	for i := range nodes {
		set = append(set, &nodes[i])
	}

	// What no node could ever take.
	if req.Runtime != "" {
		kept := keep(set, func(n *Node) bool { return n.Runtime == req.Runtime })
		if len(kept) == 0 {
			return &Unplaceable{Never: true, Reason: fmt.Sprintf("no node runs runtime %q; nodes run %s",
				req.Runtime, list(distinct(set, func(n *Node) (string, bool) { return n.Runtime, true })))}
		}
		set = kept
	}
	for i, c := range req.Constraints {
		kept := keep(set, func(n *Node) bool { return c.matches(n.Labels) })
		if len(kept) == 0 {
			return &Unplaceable{Never: true, Reason: constraintReason(set, req.Constraints[:i+1])}
		}
		set = kept
	}
	if reason := resourceReason(set, &req, totals); reason != "" {
		return &Unplaceable{Never: true, Reason: reason}
	}

	// What no node can take now.
	ready := keep(set, func(n *Node) bool { return n.Status == StatusReady && !n.Draining })
	if len(ready) == 0 {
		return &Unplaceable{Reason: notReadyReason(set, req.Runtime != "" || len(req.Constraints) > 0)}
	}
	if reason := resourceReason(ready, &req, frees); reason != "" {
		return &Unplaceable{Reason: reason}
	}
	// Unreachable while explain and fitsNow agree; say so rather than nothing.
	return &Unplaceable{Reason: "no node fits the run (scheduler inconsistency; please report it)"}
}

func keep(set []*Node, ok func(*Node) bool) []*Node {
	kept := make([]*Node, 0, len(set))
	for _, n := range set {
		if ok(n) {
			kept = append(kept, n)
		}
	}
	return kept
}

// constraintReason explains why no node of set passes cs, the last of which
// removed the last node; it shows the values the nodes do have for that
// label, which is usually the fix.
func constraintReason(set []*Node, cs []Constraint) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.String()
	}
	var b strings.Builder
	if len(cs) == 1 {
		fmt.Fprintf(&b, "no node matches constraint %s", names[0])
	} else {
		fmt.Fprintf(&b, "no node matches constraints %s", list(names))
	}
	last := cs[len(cs)-1]
	values := distinct(set, func(n *Node) (string, bool) { v, ok := n.Labels[last.Key]; return v, ok })
	switch {
	case len(values) == 0:
		fmt.Fprintf(&b, "; no node has label %s", last.Key)
	case len(cs) == 1:
		fmt.Fprintf(&b, "; nodes have %s = %s", last.Key, list(values))
	default:
		fmt.Fprintf(&b, "; those matching the others have %s = %s", last.Key, list(values))
	}
	return b.String()
}

// notReadyReason explains that every node of set is down or draining.
func notReadyReason(set []*Node, filtered bool) string {
	var down, draining []string
	for _, n := range set {
		if n.Status != StatusReady {
			down = append(down, n.Name)
		} else {
			draining = append(draining, n.Name)
		}
	}
	what := "no node is ready"
	if filtered {
		what = "no matching node is ready"
	}
	var parts []string
	if len(down) > 0 {
		parts = append(parts, fmt.Sprintf("%d down (%s)", len(down), few(down)))
	}
	if len(draining) > 0 {
		parts = append(parts, fmt.Sprintf("%d draining (%s)", len(draining), few(draining)))
	}
	return what + ": " + strings.Join(parts, ", ")
}

// amounts are a node's GPUs, CPU and memory, either total or free.
type amounts struct {
	gpus     int
	cpu, mem int64
}

// measure reads either the totals or the free capacity of a node, and words
// the messages to match.
type measure struct {
	get func(*Node) amounts
	// gpuWord goes before "GPUs" when only GPUs are short; after is what
	// follows the other sizes; largest prefixes the best node's size.
	gpuWord, after, largest string
}

var (
	totals = measure{
		get:     func(n *Node) amounts { return amounts{n.GPUs, n.CPUMillis, n.MemoryBytes} },
		gpuWord: "", after: "", largest: "largest",
	}
	frees = measure{
		get:     func(n *Node) amounts { return amounts{n.FreeGPUs, n.FreeCPUMillis, n.FreeMemoryBytes} },
		gpuWord: "free ", after: " free", largest: "largest free",
	}
)

// resourceReason returns why no node of set has the GPUs, CPU and memory of
// req as m measures them, or "" if one does. A single resource no node has
// enough of is named with the largest there is; otherwise the resources are
// each somewhere but never together, and the closest node is named: the one
// with the GPUs and the most CPU, then memory.
//
// It reads each node once: on a full cluster every pending run comes here.
func resourceReason(set []*Node, req *Request, m measure) string {
	var gpuTop, cpuTop, memTop, closest *Node
	var g, c, mem, cl amounts
	for _, n := range set {
		a := m.get(n)
		if a.gpus >= req.GPUs && a.cpu >= req.CPUMillis && a.mem >= req.MemoryBytes {
			return ""
		}
		if gpuTop == nil || a.gpus > g.gpus || (a.gpus == g.gpus && n.Name < gpuTop.Name) {
			gpuTop, g = n, a
		}
		if cpuTop == nil || a.cpu > c.cpu || (a.cpu == c.cpu && n.Name < cpuTop.Name) {
			cpuTop, c = n, a
		}
		if memTop == nil || a.mem > mem.mem || (a.mem == mem.mem && n.Name < memTop.Name) {
			memTop, mem = n, a
		}
		if a.gpus >= req.GPUs && (closest == nil || a.cpu > cl.cpu ||
			(a.cpu == cl.cpu && (a.mem > cl.mem || (a.mem == cl.mem && n.Name < closest.Name)))) {
			closest, cl = n, a
		}
	}
	switch {
	case req.GPUs > g.gpus:
		return fmt.Sprintf("no node has %s; %s: %d on %s", gpuCount(req.GPUs, m.gpuWord), m.largest, g.gpus, gpuTop.Name)
	case req.CPUMillis > c.cpu:
		return fmt.Sprintf("no node has %s%s; %s: %s on %s", cpus(req.CPUMillis), m.after, m.largest, cpus(c.cpu), cpuTop.Name)
	case req.MemoryBytes > mem.mem:
		return fmt.Sprintf("no node has %s of memory%s; %s: %s on %s", bytes(req.MemoryBytes), m.after, m.largest, bytes(mem.mem), memTop.Name)
	}

	// Each is somewhere, never together.
	var want, has []string
	if req.GPUs > 0 {
		want = append(want, gpuCount(req.GPUs, ""))
		has = append(has, gpuCount(cl.gpus, ""))
	}
	if req.CPUMillis > 0 {
		want = append(want, cpus(req.CPUMillis))
		has = append(has, cpus(cl.cpu))
	}
	if req.MemoryBytes > 0 {
		want = append(want, bytes(req.MemoryBytes)+" of memory")
		has = append(has, bytes(cl.mem))
	}
	return fmt.Sprintf("no node has %s%s at once; closest: %s with %s%s",
		list(want), m.after, closest.Name, list(has), m.after)
}

// distinct returns the sorted distinct values of set that value reports.
func distinct(set []*Node, value func(*Node) (string, bool)) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range set {
		if v, ok := value(n); ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// list joins words as a person would: "a", "a and b", "a, b and c"; it
// shows at most five.
func list(words []string) string {
	if len(words) > 5 {
		words = append(words[:5:5], fmt.Sprintf("%d more", len(words)-5))
	}
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// few joins up to three names, then counts the rest.
func few(names []string) string {
	sort.Strings(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

// gpuCount renders a number of GPUs with an optional word before "GPU":
// "1 free GPU", "8 GPUs".
func gpuCount(n int, word string) string {
	if n == 1 {
		return "1 " + word + "GPU"
	}
	return fmt.Sprintf("%d %sGPUs", n, word)
}

// cpus renders thousandths of a CPU: "1 CPU", "8 CPUs", "0.5 CPUs".
func cpus(millis int64) string {
	if millis == 1000 {
		return "1 CPU"
	}
	if millis%1000 == 0 {
		return fmt.Sprintf("%d CPUs", millis/1000)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", float64(millis)/1000), "0") + " CPUs"
}

// bytes renders a size in the largest binary unit that keeps it readable:
// "32 GiB", "1.5 TiB", "512 MiB".
func bytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[u])
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}
