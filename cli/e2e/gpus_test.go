package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeGPUSpec is a CDI spec of two GPUs, as NVIDIA's toolkit names them,
// whose device nodes are ones the test makes; %s is their host dir.
const fakeGPUSpec = `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu0, hostPath: %[1]s/fakegpu0}]
  - name: "1"
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu1, hostPath: %[1]s/fakegpu1}]
  - name: all
    containerEdits:
      deviceNodes:
        - {path: /dev/fakegpu0, hostPath: %[1]s/fakegpu0}
        - {path: /dev/fakegpu1, hostPath: %[1]s/fakegpu1}
`

// showDevices prints the devices a container sees and the variables that
// name them.
const showDevices = `echo "devices=[$(ls /dev | grep fakegpu | tr '\n' ' ')]"
echo "NV=$NVIDIA_VISIBLE_DEVICES CUDA=$CUDA_VISIBLE_DEVICES"`

// fakeGPUs makes two fake GPUs and a CDI spec of them, and returns the
// spec's dir.
func fakeGPUs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	devDir, specDir := filepath.Join(dir, "dev"), filepath.Join(dir, "cdi")
	os.Mkdir(devDir, 0o755)
	os.Mkdir(specDir, 0o755)
	// Clones of /dev/null (1:3) and /dev/zero (1:5): harmless, and told
	// apart by their minor numbers.
	for i, minor := range []uint32{3, 5} {
		node := filepath.Join(devDir, fmt.Sprintf("fakegpu%d", i))
		if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatalf("make fake GPU device node (this test needs root): %v", err)
		}
		t.Cleanup(func() { os.Remove(node) })
	}
	writeFile(t, specDir, "fake-gpus.yaml", fmt.Sprintf(fakeGPUSpec, devDir))
	return specDir
}

// TestGPUAdmissionContainerd gives containerd two fake GPUs through a CDI
// spec: a run of 3 GPUs is refused at submit; a run of 2 waits PENDING,
// saying so, until a run of 1 ends; each container sees exactly its own
// device nodes, and the variables name them.
func TestGPUAdmissionContainerd(t *testing.T) {
	socket, image := containerdEnv(t)
	dir := t.TempDir()
	specDir := fakeGPUs(t)
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf(`state_dir = %q
runtime "containerd" {
  address       = %q
  namespace     = "hush"
  stop_grace    = "2s"
  cdi_spec_dirs = [%q]
}
`, filepath.Join(dir, "state"), socket, specDir))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	user := a.newUser("alice")

	nodes := a.mustHush(user, "", "get", "nodes").stdout
	if !regexp.MustCompile(`(?m)^\S+\s+\S+\s+ready\s+2/2\s+\S+\s+\S+\s+0$`).MatchString(nodes) {
		t.Errorf("get nodes does not show 2 free GPUs:\n%s", nodes)
	}

	r := a.hush(user, "", "run", "-f", writeSpec(t, "three", image, "true", "gpus: 3"))
	if r.code != 1 || !strings.Contains(r.stderr, "the run asks for 3 GPUs, but this node has 2 in total: ask for at most 2") {
		t.Errorf("a run of 3 GPUs: %s", r)
	}
	if names := a.mustHush(user, "", "get", "runs", "-o", "name").stdout; names != "" {
		t.Errorf("the refused run was recorded: %q", names)
	}

	// Run one holds its GPU until the test opens the gate: the container
	// shares the host's network.
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-gate:
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	a.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "one", image,
		showDevices+"\nuntil wget -q -O /dev/null "+srv.URL+" 2>/dev/null; do sleep 0.1; done", "gpus: 1"))
	for runStatus(t, a, user, "one")["status"] != "RUNNING" {
		time.Sleep(20 * time.Millisecond)
	}

	two := exec.Command(hushBin, "run", "-f", writeSpec(t, "two", image, showDevices, "gpus: 2"))
	two.Env = append(cleanEnv(), "HUSH_ADDR="+a.addr, "HUSH_TOKEN="+user)
	twoOut := &syncBuffer{}
	two.Stdout, two.Stderr = twoOut, twoOut
	if err := two.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(twoOut.String(), "i  Waiting for 2 GPUs; 1 free\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if run := runStatus(t, a, user, "two"); run["status"] != "PENDING" || !strings.Contains(twoOut.String(), "i  Waiting for 2 GPUs; 1 free\n") {
		t.Errorf("run two is %v and hush run printed:\n%s\nwant it PENDING, waiting for 2 GPUs", run["status"], twoOut)
	}
	if desc := a.mustHush(user, "", "describe", "run", "two").stdout; !regexp.MustCompile(`waiting\s+waiting for 2 GPUs; 1 free`).MatchString(desc) {
		t.Errorf("describe run two lacks the wait:\n%s", desc)
	}
	nodes = a.mustHush(user, "", "get", "nodes").stdout
	if !regexp.MustCompile(`(?m)^\S+\s+\S+\s+ready\s+1/2\s+\S+\s+\S+\s+2 \(1 waiting\)$`).MatchString(nodes) {
		t.Errorf("get nodes does not show 1 of 2 GPUs free and a run waiting:\n%s", nodes)
	}

	// A run without GPUs does not wait behind them, and sees none.
	none := a.mustHush(user, "", "run", "-f", writeSpec(t, "none", image, showDevices)).stdout
	if !strings.Contains(none, "devices=[]\nNV=void CUDA=\n") {
		t.Errorf("a run without GPUs printed:\n%s", none)
	}

	close(gate)
	if err := two.Wait(); err != nil {
		t.Fatalf("hush run two: %v\n%s", err, twoOut)
	}
	if out := twoOut.String(); !strings.Contains(out, "devices=[fakegpu0 fakegpu1 ]\nNV=0,1 CUDA=0,1\n") ||
		!regexp.MustCompile(`i  Admitted after waiting \S+; holds GPUs 0, 1\n`).MatchString(out) {
		t.Errorf("run two printed:\n%s\nwant it admitted with both GPUs", out)
	}
	if out := a.mustHush(user, "", "logs", "one").stdout; out != "devices=[fakegpu0 ]\nNV=0 CUDA=0\n" {
		t.Errorf("run one printed %q, want only fakegpu0", out)
	}
	one := runStatus(t, a, user, "one")
	if one["status"] != "COMPLETED" || !slices.Equal(one["devices"].([]any), []any{"0"}) {
		t.Errorf("run one: status %v, devices %v; want COMPLETED holding 0", one["status"], one["devices"])
	}
	if desc := a.mustHush(user, "", "describe", "run", "two").stdout; !strings.Contains(desc, "Compute:    2 GPUs (0, 1)\n") {
		t.Errorf("describe run two does not show its GPUs:\n%s", desc)
	}
	nodes = a.mustHush(user, "", "get", "nodes").stdout
	if !regexp.MustCompile(`(?m)^\S+\s+\S+\s+ready\s+2/2\s+\S+\s+\S+\s+0$`).MatchString(nodes) {
		t.Errorf("get nodes does not show the GPUs free again:\n%s", nodes)
	}
}

// TestGPUsKeptAcrossRestart restarts the agent under a run that holds
// both GPUs: the adopted run keeps them, so a run of 1 GPU waits until it
// is stopped, and then gets one.
func TestGPUsKeptAcrossRestart(t *testing.T) {
	_, image := containerdEnv(t)
	r := startRestartable(t, "containerd", fmt.Sprintf("cdi_spec_dirs = [%q]", fakeGPUs(t)))
	user := r.newUser("alice")
	r.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "big", image, "sleep 60", "gpus: 2"))
	waitStatus(t, r.agent, user, "big", 30*time.Second, "RUNNING")

	r.restart(syscall.SIGKILL, time.Second)
	if nodes := r.mustHush(user, "", "get", "nodes").stdout; !regexp.MustCompile(`ready\s+0/2\s`).MatchString(nodes) {
		t.Errorf("after the restart, get nodes does not show both GPUs held:\n%s", nodes)
	}
	r.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "small", image, showDevices, "gpus: 1"))
	time.Sleep(time.Second)
	if st := runStatus(t, r.agent, user, "small"); st["status"] != "PENDING" || !strings.Contains(fmt.Sprint(st["events"]), "waiting for 1 GPU; 0 free") {
		t.Errorf("the run of 1 GPU: got %v, want PENDING waiting for 1 GPU: %v", st["status"], st["events"])
	}
	r.mustHush(user, "", "stop", "run", "big")
	small := waitStatus(t, r.agent, user, "small", 30*time.Second, "COMPLETED", "FAILED", "STOPPED", "LOST")
	if out := r.mustHush(user, "", "logs", "small").stdout; small["status"] != "COMPLETED" || !strings.Contains(out, "devices=[fakegpu0 ]") {
		t.Errorf("the run of 1 GPU once the big one stopped: got %v with log %q", small["status"], out)
	}
}
