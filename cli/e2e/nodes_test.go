package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeGPUsN makes n fake GPUs (n at most 5) and a CDI spec of them, and
// returns the spec's dir.
func fakeGPUsN(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	devDir, specDir := filepath.Join(dir, "dev"), filepath.Join(dir, "cdi")
	os.Mkdir(devDir, 0o755)
	os.Mkdir(specDir, 0o755)
	spec := "cdiVersion: \"0.6.0\"\nkind: nvidia.com/gpu\ndevices:\n"
	// Clones of /dev/null, zero, full, random and urandom: harmless.
	for i, minor := range []uint32{3, 5, 7, 8, 9}[:n] {
		node := filepath.Join(devDir, fmt.Sprintf("fakegpu%d", i))
		if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatalf("make fake GPU device node (this test needs root): %v", err)
		}
		t.Cleanup(func() { os.Remove(node) })
		spec += fmt.Sprintf("  - name: %q\n    containerEdits:\n      deviceNodes: [{path: /dev/fakegpu%d, hostPath: %s}]\n", fmt.Sprint(i), i, node)
	}
	writeFile(t, specDir, "fake-gpus.yaml", spec)
	return specDir
}

// startClient starts a client agent of the servers c, named name, with
// gpus fake GPUs, on containerd.
func startClient(t *testing.T, c *servers, name string, gpus int, meta string) (*agent, string) {
	t.Helper()
	socket, _ := containerdEnv(t)
	// A namespace of its own, as a machine of its own would have its own
	// containerd: a run placed again elsewhere keeps its id.
	namespace := "hush-" + name
	imp := exec.Command("ctr", "-a", socket, "-n", namespace, "images", "import", os.Getenv("HUSH_TEST_IMAGE_TAR"))
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("import the test image into namespace %s: %v\n%s", namespace, err, out)
	}
	dir := t.TempDir()
	var addrs []string
	for _, a := range c.agents {
		addrs = append(addrs, fmt.Sprintf("%q", strings.TrimPrefix(a.addr, "https://")))
	}
	cfg := writeFile(t, dir, "client.hcl", fmt.Sprintf(`state_dir = %q
node_name = %q
tls {
  cert_file = %q
  key_file = %q
  ca_file = %q
  verify_incoming = true
}
client {
  enabled = true
  servers = [%s]
  node_class = "gpu"
  meta = { %s }
}
runtime "containerd" {
  address       = %q
  namespace     = %q
  stop_grace    = "2s"
  cdi_spec_dirs = [%q]
}
`, filepath.Join(dir, "state"), name, c.pki.node+".pem", c.pki.node+"-key.pem", c.pki.ca+".pem",
		strings.Join(addrs, ", "), meta, socket, namespace, fakeGPUsN(t, gpus)))
	return relaunchClient(t, filepath.Join(dir, "data"), cfg), cfg
}

// relaunchClient starts a client agent on dataDir with config cfg.
func relaunchClient(t *testing.T, dataDir, cfg string) *agent {
	t.Helper()
	a := launchAgent(t, dataDir, "-config", cfg)
	a.shared = true // a client has no root token: its users are the servers'
	a.waitStarted(30 * time.Second)
	return a
}

// apiNode is a node as `hush get nodes -o json` shows it.
type apiNode struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Drain    bool   `json:"drain"`
	Capacity struct {
		GPUs     int `json:"gpus"`
		GPUsFree int `json:"gpus_free"`
	} `json:"capacity"`
}

// nodesOf returns the nodes server i lists, by name.
func nodesOf(c *servers, i int) map[string]apiNode {
	c.t.Helper()
	r := c.hush(i, "get", "nodes", "-o", "json")
	if r.code != 0 {
		c.t.Fatalf("get nodes on s%d: %s", i+1, r)
	}
	var list []apiNode
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		c.t.Fatalf("parse get nodes %q: %v", r.stdout, err)
	}
	out := map[string]apiNode{}
	for _, n := range list {
		out[n.Name] = n
	}
	return out
}

// runOn returns run ref's status and node, as server i describes it.
func runOn(c *servers, i int, user, ref string) (status, node string, attempt int) {
	c.t.Helper()
	a := c.agents[i]
	r := runHush(c.t, c.pki.env(a.addr, user, c.pki.client), "", "get", "runs", "-o", "json")
	if r.code != 0 {
		c.t.Fatalf("get runs on s%d: %s", i+1, r)
	}
	var runs []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Status  string `json:"status"`
		Node    string `json:"node"`
		Attempt int    `json:"attempt"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		c.t.Fatalf("parse runs %q: %v", r.stdout, err)
	}
	for _, run := range runs {
		if run.Name == ref || run.ID == ref {
			return run.Status, run.Node, run.Attempt
		}
	}
	c.t.Fatalf("no run %s on s%d: %s", ref, i+1, r.stdout)
	return "", "", 0
}

// waitFor polls cond every 200ms until it holds or within passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClientsPlaceRuns is issue 15's cluster: three servers that run no
// workloads and two client agents on containerd, with 2 and 4 fake GPUs.
// Runs go where their GPUs are, wait when no node has room, and follow
// their runs' logs and stops through a follower; a killed client's runs
// are LOST within the node TTL, or placed again with retries; the seed's
// hello run and a nested run work as on one agent; and no client's data
// dir holds a secret value.
func TestClientsPlaceRuns(t *testing.T) {
	_, image := containerdEnv(t)
	// The servers resolve provider references for the runs on the
	// clients: when a run starts, and as it refreshes them.
	values := t.TempDir()
	writeFile(t, values, "rotating", "rotating-value-one")
	c := startServersWith(t, 3, serverHooks{config: "server {\n  node_ttl = \"3s\"\n}\nclient {\n  enabled = false\n}\n" + filePlugin(t, values)})
	gpu2, gpu2cfg := startClient(t, c, "gpu-2", 2, `size = "2"`)
	gpu4, _ := startClient(t, c, "gpu-4", 4, `size = "4"`)
	waitFor(t, "both clients ready", 20*time.Second, func() bool {
		n := nodesOf(c, 0)
		return len(n) == 2 && n["gpu-2"].Status == "ready" && n["gpu-4"].Status == "ready" && n["gpu-4"].Capacity.GPUs == 4
	})
	// A node's certificate does not make a server, and a node's calls
	// need its secret.
	nodeID, _ := os.ReadFile(filepath.Join(gpu4.dataDir, "node-id"))
	for path, want := range map[string]string{
		"/v1/internal/cluster/status":                                       "is a node's",
		"/v1/internal/nodes/" + strings.TrimSpace(string(nodeID)) + "/runs": "the node's secret is missing or wrong",
	} {
		if code, body := nodeRequest(t, c, c.agents[0].addr+path); code != 403 || !strings.Contains(body, want) {
			t.Errorf("GET %s with a node's certificate and no secret: got %d %s, want 403 saying %q", path, code, body, want)
		}
	}
	leader := c.leader(0)
	follower := (leader + 1) % 3
	on := func(i int, user string, args ...string) result {
		a := c.agents[i]
		return runHush(t, c.pki.env(a.addr, user, c.pki.client), "", args...)
	}
	alice := strings.TrimSpace(on(leader, c.agents[leader].token, "acl", "token", "create", "--user", "alice", "-q").stdout)
	const canary = "placed-canary-value-93"
	if r := on(follower, alice, "create", "secret", "env", "PLACED_CANARY="+canary); r.code != 0 {
		t.Fatalf("create secret: %s", r)
	}

	// The seed's hello run, and a nested run, through a follower.
	if r := on(follower, alice, "run", "-f", writeSpec(t, "hello", image, `echo "[$PLACED_CANARY]"`)); r.code != 0 || !strings.Contains(r.stdout, "["+canary+"]") {
		t.Fatalf("hello run on the cluster: %s", r)
	}
	// A provider value that changes reaches a run on a client through
	// the servers, with the run's on_change signal.
	if r := on(follower, alice, "create", "secret", "mounted", "--name", "rotating", "--from", "file:rotating"); r.code != 0 {
		t.Fatalf("create secret --from: %s", r)
	}
	rotated := writeSpec(t, "rotated", image, `trap 'echo "now $(cat "$SECRET_PATH_ROTATING")"; exit 0' HUP
echo "was $(cat "$SECRET_PATH_ROTATING")"
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 3`, "secrets:\n  - name: rotating\n    refresh: 1s\n    on_change: signal:SIGHUP")
	if r := on(follower, alice, "run", "-f", rotated, "--no-follow"); r.code != 0 {
		t.Fatalf("submit rotated: %s", r)
	}
	waitFor(t, "rotated started", 30*time.Second, func() bool {
		return strings.Contains(on(follower, alice, "logs", "rotated").stdout, "was rotating-value-one")
	})
	writeFile(t, values, "rotating", "rotating-value-two")
	waitFor(t, "rotated signalled", 30*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "rotated"); return s == "COMPLETED" })
	if out := on(follower, alice, "logs", "rotated").stdout; !strings.Contains(out, "now rotating-value-two") {
		t.Errorf("the run on a client after its value changed: got log\n%s\nwant the new value", out)
	}

	parent := fmt.Sprintf(`printf 'name: child\nimage: %s\ncommand: echo child sees $PLACED_CANARY\n' > /tmp/child.yaml
hush run -f /tmp/child.yaml`, image)
	if r := on(follower, alice, "run", "-f", writeSpec(t, "parent", image, parent)); r.code != 0 || !strings.Contains(r.stdout, "child sees "+canary) {
		t.Errorf("nested run on the cluster: %s", r)
	}

	// A 4-GPU run goes to the 4-GPU node; with it running, a 2-GPU run
	// fills the other node, and a second waits until the big one ends.
	if r := on(leader, alice, "run", "-f", writeSpec(t, "big", image, "sleep 6", "gpus: 4"), "--no-follow"); r.code != 0 {
		t.Fatalf("submit big: %s", r)
	}
	waitFor(t, "big running", 20*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "big"); return s == "RUNNING" })
	if _, node, _ := runOn(c, follower, alice, "big"); node != "gpu-4" {
		t.Errorf("the 4-GPU run is on %q, want gpu-4", node)
	}
	for _, name := range []string{"two-a", "two-b"} {
		if r := on(follower, alice, "run", "-f", writeSpec(t, name, image, `echo "$(ls /dev | grep fakegpu | wc -l) gpus"; sleep 30`, "gpus: 2"), "--no-follow"); r.code != 0 {
			t.Fatalf("submit %s: %s", name, r)
		}
	}
	waitFor(t, "two-a running", 20*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "two-a"); return s == "RUNNING" })
	if _, node, _ := runOn(c, follower, alice, "two-a"); node != "gpu-2" {
		t.Errorf("two-a is on %q, want gpu-2", node)
	}
	if s, node, _ := runOn(c, follower, alice, "two-b"); s != "PENDING" || node != "" {
		t.Errorf("two-b with both nodes full: got %s on %q, want PENDING on no node", s, node)
	}
	if d := on(follower, alice, "describe", "run", "two-b").stdout; !strings.Contains(d, "waiting for a node: no node has 2 free GPUs") {
		t.Errorf("two-b does not say why it waits:\n%s", d)
	}
	if n := nodesOf(c, follower); n["gpu-2"].Capacity.GPUsFree != 0 || n["gpu-4"].Capacity.GPUsFree != 0 {
		t.Errorf("free GPUs with both nodes full: got %+v", n)
	}
	waitFor(t, "two-b running on gpu-4 once big ended", 30*time.Second, func() bool {
		s, node, _ := runOn(c, follower, alice, "two-b")
		return s == "RUNNING" && node == "gpu-4"
	})
	if s, _, _ := runOn(c, follower, alice, "big"); s != "COMPLETED" {
		t.Errorf("big: got %s, want COMPLETED", s)
	}

	// Logs and stop of a run on a client, through a follower.
	waitFor(t, "two-b's log through a follower", 10*time.Second, func() bool {
		return strings.Contains(on(follower, alice, "logs", "two-b").stdout, "2 gpus")
	})
	if r := on(follower, alice, "stop", "run", "two-b"); r.code != 0 {
		t.Errorf("stop two-b through a follower: %s", r)
	}
	waitFor(t, "two-b stopped", 20*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "two-b"); return s == "STOPPED" })
	// Deleted through a follower, it leaves no log on its node.
	logs, _ := os.ReadDir(filepath.Join(gpu4.dataDir, "logs"))
	if r := on(follower, alice, "delete", "run", "two-b"); r.code != 0 {
		t.Errorf("delete two-b through a follower: %s", r)
	}
	if after, _ := os.ReadDir(filepath.Join(gpu4.dataDir, "logs")); len(after) != len(logs)-1 {
		t.Errorf("gpu-4's run logs: %d before two-b was deleted, %d after; want one fewer", len(logs), len(after))
	}

	// A killed client: its run with a retry goes to the other node, the
	// one without is LOST, within the TTL (3s) and a few heartbeats.
	if r := on(follower, alice, "stop", "run", "two-a"); r.code != 0 {
		t.Errorf("stop two-a: %s", r)
	}
	waitFor(t, "two-a stopped", 20*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "two-a"); return s == "STOPPED" })
	for name, extra := range map[string]string{"doomed": "constraints: [\"size = 2\"]", "again": "retries: 1"} {
		if r := on(follower, alice, "run", "-f", writeSpec(t, name, image, `echo "on $HOSTNAME [$PLACED_CANARY]"; sleep 12`, "gpus: 1", extra), "--no-follow"); r.code != 0 {
			t.Fatalf("submit %s: %s", name, r)
		}
	}
	for _, name := range []string{"doomed", "again"} {
		waitFor(t, name+" running on gpu-2", 20*time.Second, func() bool {
			s, node, _ := runOn(c, follower, alice, name)
			return s == "RUNNING" && node == "gpu-2"
		})
	}
	_ = gpu2.cmd.Process.Signal(syscall.SIGKILL)
	<-gpu2.exited
	killed := time.Now()
	waitFor(t, "doomed LOST", 15*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "doomed"); return s == "LOST" })
	t.Logf("doomed was LOST %s after its client was killed (node_ttl 3s)", time.Since(killed).Round(100*time.Millisecond))
	waitFor(t, "again running on gpu-4", 20*time.Second, func() bool {
		s, node, attempt := runOn(c, follower, alice, "again")
		return s == "RUNNING" && node == "gpu-4" && attempt == 2
	})
	if n := nodesOf(c, follower); n["gpu-2"].Status != "down" {
		t.Errorf("the killed client: got %+v, want down", n["gpu-2"])
	}
	if d := on(follower, alice, "describe", "run", "again").stdout; !strings.Contains(d, "node gpu-2 was lost") || !strings.Contains(d, "placed on node gpu-4 (attempt 2 of 2)") {
		t.Errorf("again's events do not tell its move:\n%s", d)
	}
	waitFor(t, "again's log from gpu-4", 10*time.Second, func() bool {
		return strings.Contains(on(leader, alice, "logs", "again").stdout, "["+canary+"]")
	})

	// The killed client comes back: it stops its copies of the runs the
	// servers no longer have on it, and is ready again.
	gpu2 = relaunchClient(t, gpu2.dataDir, gpu2cfg)
	waitFor(t, "gpu-2 ready again", 20*time.Second, func() bool { return nodesOf(c, follower)["gpu-2"].Status == "ready" })
	waitFor(t, "again COMPLETED on gpu-4", 30*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "again"); return s == "COMPLETED" })
	if s, node, _ := runOn(c, follower, alice, "doomed"); s != "LOST" || node != "gpu-2" {
		t.Errorf("doomed after its node came back: got %s on %q, want LOST on gpu-2", s, node)
	}

	// The leader dies: the clients stay ready through the election, and
	// runs are placed and run as before.
	killedLeader := c.leader(follower)
	c.agents[killedLeader].cmd.Process.Signal(syscall.SIGKILL)
	<-c.agents[killedLeader].exited
	alive := (killedLeader + 1) % 3
	waitFor(t, "a new leader", 20*time.Second, func() bool { l := c.leader(alive); return l >= 0 && l != killedLeader })
	if r := on(alive, alice, "run", "-f", writeSpec(t, "after-failover", image, `echo "[$PLACED_CANARY]"`, "gpus: 1")); r.code != 0 || !strings.Contains(r.stdout, "["+canary+"]") {
		t.Errorf("a run after the leader died: %s", r)
	}
	if n := nodesOf(c, alive); n["gpu-2"].Status != "ready" || n["gpu-4"].Status != "ready" {
		t.Errorf("the clients after the leader died: %+v, want both ready", n)
	}
	c.restart(killedLeader)
	leader = c.leader(alive)
	follower = (leader + 1) % 3

	// Drain: gpu-4 takes no new runs; a run that only it could take waits.
	if r := on(leader, c.agents[leader].token, "node", "drain", "gpu-4"); r.code != 0 || !strings.Contains(r.stdout, "gpu-4 is draining") {
		t.Fatalf("drain gpu-4: %s", r)
	}
	if r := on(follower, alice, "run", "-f", writeSpec(t, "wide", image, "true", "gpus: 3"), "--no-follow"); r.code != 0 {
		t.Fatalf("submit wide: %s", r)
	}
	time.Sleep(2 * time.Second)
	if s, _, _ := runOn(c, follower, alice, "wide"); s != "PENDING" {
		t.Errorf("a 3-GPU run with gpu-4 draining: got %s, want PENDING", s)
	}
	if r := on(leader, c.agents[leader].token, "node", "drain", "gpu-4", "--disable"); r.code != 0 {
		t.Fatalf("undrain gpu-4: %s", r)
	}
	waitFor(t, "wide COMPLETED once gpu-4 takes runs again", 30*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "wide"); return s == "COMPLETED" })
	// Drain --stop stops the node's runs.
	if r := on(follower, alice, "run", "-f", writeSpec(t, "long", image, "sleep 60", "gpus: 1", `constraints: ["size = 4"]`), "--no-follow"); r.code != 0 {
		t.Fatalf("submit long: %s", r)
	}
	waitFor(t, "long running", 20*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "long"); return s == "RUNNING" })
	if r := on(follower, c.agents[leader].token, "node", "drain", "gpu-4", "--stop"); r.code != 0 {
		t.Fatalf("drain --stop gpu-4: %s", r)
	}
	waitFor(t, "long stopped by the drain", 20*time.Second, func() bool { s, _, _ := runOn(c, follower, alice, "long"); return s == "STOPPED" })
	if d := on(follower, alice, "describe", "run", "long").stdout; !strings.Contains(d, "node gpu-4 is drained") {
		t.Errorf("long's events do not say the drain stopped it:\n%s", d)
	}
	if r := on(follower, alice, "run", "-f", writeSpec(t, "huge", image, "true", "gpus: 5")); r.code == 0 || !strings.Contains(r.stderr, "no node of the cluster can ever take this run") {
		t.Errorf("a 5-GPU run on nodes of 2 and 4: %s", r)
	}

	for _, cl := range []*agent{gpu2, gpu4} {
		cl.stop()
		for _, v := range []string{canary, "rotating-value-one", "rotating-value-two"} {
			if hits := grepTree(t, cl.dataDir, []byte(v)); len(hits) > 0 {
				t.Errorf("client data dir %s holds a secret value in %v", cl.dataDir, hits)
			}
		}
	}
}

// nodeRequest GETs url with the cluster's node certificate, as a client
// agent would, without its node secret.
func nodeRequest(t *testing.T, c *servers, url string) (int, string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(c.pki.node+".pem", c.pki.node+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(c.pki.ca + ".pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
