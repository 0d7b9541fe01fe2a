package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// fakeNode serves /v1/agent/self for a node of the given capacity.
func fakeNode(t *testing.T, self *api.AgentSelf) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agent/self" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(self)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestGetNodes lists the node of each cluster with what is free of its
// capacity, and warns of a cluster that does not answer.
func TestGetNodes(t *testing.T) {
	home := t.TempDir()
	gpu := fakeNode(t, &api.AgentSelf{Node: "gpu-1", Cluster: "east", Runtime: "containerd", Capacity: &api.NodeCapacity{
		GPUs: 8, GPUsFree: 3, CPUs: 64, CPUsFree: 12.5, MemoryBytes: 512 << 30, MemoryFreeBytes: 3 << 29, ActiveRuns: 4, WaitingRuns: 1}})
	small := fakeNode(t, &api.AgentSelf{Node: "laptop", Cluster: "home", Runtime: "exec", Capacity: &api.NodeCapacity{
		CPUs: 4, CPUsFree: 4, MemoryBytes: 16 << 30, MemoryFreeBytes: 16 << 30}})
	cfg := fmt.Sprintf("clusters:\n  - {name: a, address: %s, token: t}\n  - {name: b, address: %s, token: t}\n  - {name: down, address: http://127.0.0.1:9, token: t}\n", gpu, small)
	os.MkdirAll(filepath.Join(home, ".hush"), 0o700)
	os.WriteFile(filepath.Join(home, ".hush", "config.yaml"), []byte(cfg), 0o600)
	env := map[string]string{"HOME": home}

	start := time.Now()
	code, out, errw := hush(t, env, "get", "nodes")
	want := "NAME    CLUSTER  RUNTIME     GPUS  CPUS     MEMORY         RUNS\n" +
		"gpu-1   a        containerd  3/8   12.5/64  1.5GiB/512GiB  4 (1 waiting)\n" +
		"laptop  b        exec        0/0   4/4      16GiB/16GiB    0\n"
	if code != 0 || out != want {
		t.Errorf("get nodes: got exit %d, stdout:\n%s\nwant:\n%s", code, out, want)
	}
	if !strings.Contains(errw, "!  cluster down:") {
		t.Errorf("get nodes does not warn of the cluster that is down: %q", errw)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("get nodes took %s", time.Since(start))
	}

	code, out, _ = hush(t, env, "get", "nodes", "-o", "json")
	var nodes []node
	if err := json.Unmarshal([]byte(out), &nodes); code != 0 || err != nil || len(nodes) != 2 ||
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
