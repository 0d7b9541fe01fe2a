package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// fakeNode serves /v1/agent/self for a node of the given capacity, and
// answers other paths as every agent has: with its JSON not_found.
func fakeNode(t *testing.T, self *api.AgentSelf) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agent/self" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(&api.ErrorResponse{Error: "no API endpoint " + r.Method + " " + r.URL.Path, Code: api.CodeNotFound})
			return
		}
		json.NewEncoder(w).Encode(self)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestGetNodesOldAgents lists, for agents older than GET /v1/nodes, the
// node of each agent with what is free of its capacity, with a note, and
// warns of a cluster that does not answer.
func TestGetNodesOldAgents(t *testing.T) {
	home := t.TempDir()
	gpu := fakeNode(t, &api.AgentSelf{Node: "gpu-1", Cluster: "east", Runtime: "containerd", Capacity: &api.NodeCapacity{
		GPUs: 8, GPUsFree: 3, CPUs: 64, CPUsFree: 12.5, MemoryBytes: 512 << 30, MemoryFreeBytes: 3 << 29, ActiveRuns: 4, WaitingRuns: 1}})
	small := fakeNode(t, &api.AgentSelf{Node: "laptop", Cluster: "home", Runtime: "exec", Capacity: &api.NodeCapacity{
		CPUs: 4, CPUsFree: 4, MemoryBytes: 16 << 30, MemoryFreeBytes: 16 << 30}})
	oldest := fakeNode(t, &api.AgentSelf{Node: "pi", Cluster: "attic", Runtime: "exec"})
	writeClusters(t, home, "a", gpu, "b", small, "c", oldest, "down", "http://127.0.0.1:9")
	env := map[string]string{"HOME": home}

	start := time.Now()
	code, out, errw := hush(t, env, "get", "nodes")
	want := "NAME    CLUSTER  STATUS  GPUS  CPUS     MEMORY         RUNS\n" +
		"gpu-1   a        ready   3/8   12.5/64  1.5GiB/512GiB  4 (1 waiting)\n" +
		"laptop  b        ready   0/0   4/4      16GiB/16GiB    0\n" +
		"pi      c        ready   -     -        -              -\n"
	if code != 0 || out != want {
		t.Errorf("get nodes: got exit %d, stdout:\n%s\nwant:\n%s", code, out, want)
	}
	if !strings.Contains(errw, "!  cluster down:") {
		t.Errorf("get nodes does not warn of the cluster that is down: %q", errw)
	}
	if !strings.Contains(errw, "!  cluster a: its agent is older than the node list (GET /v1/nodes), so only that agent's own node is shown") {
		t.Errorf("get nodes does not note the older agent: %q", errw)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("get nodes took %s", time.Since(start))
	}

	code, out, _ = hush(t, env, "get", "nodes", "-o", "json")
	var nodes []api.Node
	if err := json.Unmarshal([]byte(out), &nodes); code != 0 || err != nil || len(nodes) != 3 ||
		nodes[0].Name != "gpu-1" || nodes[0].Cluster != "a" || nodes[0].Capacity.GPUsFree != 3 || nodes[1].Capacity.MemoryBytes != 16<<30 {
		t.Errorf("get nodes -o json: got exit %d, %v, %s", code, err, out)
	}
	code, out, _ = hush(t, env, "get", "nodes", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "gpus_free: 3") || !strings.Contains(out, "cluster: a") {
		t.Errorf("get nodes -o yaml: got exit %d:\n%s", code, out)
	}

	// Talking to one agent directly, the cluster is the agent's own name.
	code, out, _ = hush(t, map[string]string{"HUSH_ADDR": small, "HUSH_TOKEN": "t"}, "get", "nodes", "-o", "name")
	if code != 0 || out != "laptop\n" {
		t.Errorf("get nodes -o name: got exit %d, %q", code, out)
	}
	code, out, _ = hush(t, map[string]string{"HUSH_ADDR": small, "HUSH_TOKEN": "t"}, "get", "nodes")
	if code != 0 || !strings.Contains(out, "laptop  home ") {
		t.Errorf("get nodes direct: got exit %d:\n%s", code, out)
	}
}

// writeClusters writes a CLI config of clusters given as name, address
// pairs.
func writeClusters(t *testing.T, home string, nameAddr ...string) {
	t.Helper()
	cfg := "clusters:\n"
	for i := 0; i+1 < len(nameAddr); i += 2 {
		cfg += fmt.Sprintf("  - {name: %s, address: %s, token: t}\n", nameAddr[i], nameAddr[i+1])
	}
	if err := os.MkdirAll(filepath.Join(home, ".hush"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".hush", "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeServers serves /v1/nodes, /v1/agent/self and the drain of a node,
// as the servers of a cluster do, and records the drain requests.
type fakeServers struct {
	URL    string
	nodes  []*api.Node
	drains []string // "NODE enable stop"
}

func newFakeServers(t *testing.T, cluster string, nodes ...*api.Node) *fakeServers {
	t.Helper()
	f := &fakeServers{nodes: nodes}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(&api.ListNodesResponse{Nodes: f.nodes})
	})
	mux.HandleFunc("GET /v1/agent/self", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(&api.AgentSelf{Node: "server-1", Cluster: cluster})
	})
	mux.HandleFunc("POST /v1/nodes/{node}/drain", func(w http.ResponseWriter, r *http.Request) {
		var req api.DrainNodeRequest
		json.NewDecoder(r.Body).Decode(&req)
		ref := r.PathValue("node")
		f.drains = append(f.drains, fmt.Sprintf("%s %v %v", ref, req.Enable, req.Stop))
		for _, n := range f.nodes {
			if n.Name == ref || n.ID == ref {
				n.Drain = req.Enable
				json.NewEncoder(w).Encode(n)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(&api.ErrorResponse{Error: "no node " + ref, Code: api.CodeNotFound})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// TestGetNodes lists every node of every cluster, with its status and what
// is free of its capacity.
func TestGetNodes(t *testing.T) {
	home := t.TempDir()
	east := newFakeServers(t, "east",
		&api.Node{ID: "n2", Name: "gpu-2", Status: api.NodeReady, Drain: true, Runtime: "containerd",
			Capacity: api.NodeCapacity{GPUs: 8, GPUsFree: 8, CPUs: 96, CPUsFree: 96, MemoryBytes: 1 << 40, MemoryFreeBytes: 1 << 40}},
		&api.Node{ID: "n1", Name: "gpu-1", Status: api.NodeReady, Runtime: "containerd",
			Capacity: api.NodeCapacity{GPUs: 8, GPUsFree: 4, CPUs: 96, CPUsFree: 48, MemoryBytes: 1 << 40, MemoryFreeBytes: 1 << 39, ActiveRuns: 2}},
		&api.Node{ID: "n3", Name: "gpu-3", Status: api.NodeDown, Runtime: "containerd",
			Capacity: api.NodeCapacity{GPUs: 4, CPUs: 32, MemoryBytes: 256 << 30}})
	west := newFakeServers(t, "west")
	old := fakeNode(t, &api.AgentSelf{Node: "laptop", Cluster: "home", Runtime: "exec", Capacity: &api.NodeCapacity{
		CPUs: 4, CPUsFree: 4, MemoryBytes: 16 << 30, MemoryFreeBytes: 16 << 30}})
	writeClusters(t, home, "e", east.URL, "w", west.URL, "old", old)
	env := map[string]string{"HOME": home}

	code, out, errw := hush(t, env, "get", "nodes")
	want := "NAME    CLUSTER  STATUS           GPUS  CPUS   MEMORY       RUNS\n" +
		"gpu-1   e        ready            4/8   48/96  512GiB/1TiB  2\n" +
		"gpu-2   e        ready, draining  8/8   96/96  1TiB/1TiB    0\n" +
		"gpu-3   e        down             0/4   0/32   0B/256GiB    0\n" +
		"laptop  old      ready            0/0   4/4    16GiB/16GiB  0\n"
	if code != 0 || out != want {
		t.Errorf("get nodes: got exit %d, stdout:\n%s\nwant:\n%s", code, out, want)
	}
	if n := strings.Count(errw, "\n"); n != 1 || !strings.Contains(errw, "!  cluster old: its agent is older than the node list") {
		t.Errorf("got stderr %q, want one note, of the older agent", errw)
	}

	code, out, _ = hush(t, env, "get", "nodes", "-o", "json")
	var nodes []api.Node
	if err := json.Unmarshal([]byte(out), &nodes); code != 0 || err != nil || len(nodes) != 4 ||
		nodes[1].Name != "gpu-2" || nodes[1].Cluster != "e" || !nodes[1].Drain || nodes[2].Status != api.NodeDown {
		t.Errorf("get nodes -o json: got exit %d, %v, %s", code, err, out)
	}

	// A cluster without nodes, as servers that all run no workloads.
	writeClusters(t, home, "w", west.URL)
	code, out, _ = hush(t, env, "get", "nodes")
	if code != 0 || out != "i  No nodes: no agent of these clusters runs workloads.\n" {
		t.Errorf("get nodes of no nodes: got exit %d, %q", code, out)
	}

	// Talking to servers directly, the cluster is their own name.
	code, out, _ = hush(t, map[string]string{"HUSH_ADDR": east.URL, "HUSH_TOKEN": "t"}, "get", "nodes")
	if code != 0 || !strings.Contains(out, "gpu-1  east ") {
		t.Errorf("get nodes direct: got exit %d:\n%s", code, out)
	}
}

func TestNodeDrain(t *testing.T) {
	home := t.TempDir()
	east := newFakeServers(t, "east",
		&api.Node{ID: "n1", Name: "gpu-1", Status: api.NodeReady, Capacity: api.NodeCapacity{ActiveRuns: 3}},
		&api.Node{ID: "n2", Name: "gpu-2", Status: api.NodeReady, Capacity: api.NodeCapacity{ActiveRuns: 1}},
		&api.Node{ID: "n3", Name: "gpu-3", Status: api.NodeReady})
	other := newFakeServers(t, "west")
	writeClusters(t, home, "w", other.URL, "e", east.URL)
	env := map[string]string{"HOME": home}

	tests := map[string]struct {
		args  []string
		code  int
		out   string
		err   string
		drain string // the request east got; "" for none
	}{
		"drain":            {args: []string{"gpu-2", "--cluster", "e"}, out: "✔  Node gpu-2 is draining: it takes no new runs\n", drain: "gpu-2 true false"},
		"by id":            {args: []string{"--cluster", "e", "n2"}, out: "✔  Node gpu-2 is draining: it takes no new runs\n", drain: "n2 true false"},
		"stop":             {args: []string{"gpu-1", "--stop", "--cluster", "e"}, out: "✔  Node gpu-1 is draining: it takes no new runs and its 3 runs are being stopped\n", drain: "gpu-1 true true"},
		"stop one":         {args: []string{"gpu-2", "--stop", "--cluster", "e"}, out: "✔  Node gpu-2 is draining: it takes no new runs and its 1 run is being stopped\n", drain: "gpu-2 true true"},
		"stop none":        {args: []string{"gpu-3", "--stop", "--cluster", "e"}, out: "✔  Node gpu-3 is draining: it takes no new runs and it has no runs to stop\n", drain: "gpu-3 true true"},
		"disable":          {args: []string{"gpu-2", "--disable", "--cluster", "e"}, out: "✔  Node gpu-2 takes runs again\n", drain: "gpu-2 false false"},
		"unknown node":     {args: []string{"gpu-9", "--cluster", "e"}, code: exitError, err: "drain node gpu-9: no node gpu-9", drain: "gpu-9 true false"},
		"stop and disable": {args: []string{"gpu-2", "--stop", "--disable"}, code: exitUsage, err: "--stop and --disable do not go together"},
		"no node":          {args: []string{"--cluster", "e"}, code: exitUsage, err: "takes one node name or id"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			east.drains = nil
			code, out, errw := hush(t, env, append([]string{"node", "drain"}, tc.args...)...)
			if code != tc.code || out != tc.out || !strings.Contains(errw, tc.err) {
				t.Errorf("got exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errw, tc.code, tc.out, tc.err)
			}
			if got := strings.Join(east.drains, "|"); got != tc.drain {
				t.Errorf("got drain requests %q, want %q", got, tc.drain)
			}
			if len(other.drains) != 0 {
				t.Errorf("the cluster not named got drain requests %q", other.drains)
			}
		})
	}
}

func TestDescribeRunPlacement(t *testing.T) {
	tests := map[string]struct {
		run  api.Run
		want []string
		not  []string
	}{
		"one node cluster": {run: api.Run{Attempt: 1}, not: []string{"Node:", "Attempt:", "Placement:"}},
		"placed": {run: api.Run{Node: "gpu-2", Attempt: 1, Retries: 2,
			Constraints: []api.Constraint{{Key: "node_class", Op: "=", Value: "gpu"}, {Key: "rack", Op: "!=", Value: "r2"}}},
			want: []string{"Node:       gpu-2\n", "Attempt:    1 of 3\n", "Placement:  node_class = gpu, rack != r2\n"}},
		"placed again": {run: api.Run{Node: "gpu-3", Attempt: 2, Retries: 2},
			want: []string{"Node:       gpu-3\n", "Attempt:    2 of 3\n"}, not: []string{"Placement:"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			describeRun(newUI(context.Background(), strings.NewReader(""), &out, io.Discard, nil), &tc.run)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("got\n%s\nwant a line %q", out.String(), w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("got\n%s\nwant no %q", out.String(), w)
				}
			}
		})
	}
}

func TestDescribeCompute(t *testing.T) {
	tests := map[string]struct {
		run  api.Run
		want string
	}{
		"nothing":      {want: ""},
		"one gpu":      {run: api.Run{GPUs: 1}, want: "1 GPU"},
		"given gpus":   {run: api.Run{GPUs: 2, Devices: []string{"0", "3"}, CPUs: 0.5, MemoryBytes: 8 << 30}, want: "2 GPUs (0, 3), 0.5 CPUs, 8GiB of memory"},
		"cpus, memory": {run: api.Run{CPUs: 4, MemoryBytes: 512 << 20}, want: "4 CPUs, 512MiB of memory"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := describeCompute(&tc.run); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
