package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// containerdEnv returns the private containerd that .ci/with-containerd
// started, with the test image already imported. These tests need it: they
// fail, not skip, without it, so that CI cannot pass without running them.
func containerdEnv(t *testing.T) (socket, image string) {
	t.Helper()
	socket, image = os.Getenv("HUSH_TEST_CONTAINERD"), os.Getenv("HUSH_TEST_IMAGE")
	if socket == "" || image == "" {
		t.Fatal("this test needs containerd: run it through `make test`, or `.ci/with-containerd go test ./cli/e2e/`")
	}
	return socket, image
}

// startRunAgent starts an agent for runs on the given runtime ("containerd"
// or "exec") with a short stop grace period.
func startRunAgent(t *testing.T, runtime string) *agent {
	t.Helper()
	dir := t.TempDir()
	block := execRuntime(`stop_grace = "2s"`)
	if runtime == "containerd" {
		socket, _ := containerdEnv(t)
		block = fmt.Sprintf(`runtime "containerd" {
  address    = %q
  namespace  = "hush"
  stop_grace = "2s"
}`, socket)
	}
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\n%s\n", filepath.Join(dir, "state"), block))
	return startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
}

func writeSpec(t *testing.T, name, image, command string, extra ...string) string {
	t.Helper()
	src := fmt.Sprintf("name: %s\nimage: %s\ncommand: |\n  %s\n%s", name, image,
		strings.ReplaceAll(command, "\n", "\n  "), strings.Join(extra, "\n"))
	return writeFile(t, t.TempDir(), name+".yaml", src)
}

func TestRunHelloContainerd(t *testing.T) {
	socket, _ := containerdEnv(t)
	a := startRunAgent(t, "containerd")
	user := a.newUser("alice")
	a.mustHush(user, "", "create", "secret", "env", "SECRET_STUFF=super-secret-name")

	for _, spec := range []string{"../../examples/hello-secret-user.yaml", "../../examples/hello-secret-user.hcl"} {
		r := a.hush(user, "", "run", "-f", spec)
		if r.code != 0 {
			t.Fatalf("run -f %s: %s", spec, r)
		}
		want := regexp.MustCompile(`(?s)^i  Run (hello-secret-user(-[a-z0-9]{4})?) submitted\. Waiting for it to start\.\.\.\n` +
			`i  You can press Ctrl\+C to quit and follow your run manually\.\n` +
			`.*✔  Run hello-secret-user(-[a-z0-9]{4})? started\n` +
			`i  Following run logs\. Press Ctrl\+C to quit\.\n\n` +
			`Hello super-secret-name!\n\n✔  Run hello-secret-user(-[a-z0-9]{4})? completed\n$`)
		if !want.MatchString(r.stdout) {
			t.Errorf("run -f %s printed:\n%s", spec, r.stdout)
		}
	}
	// While a run is active, its container's spec (in containerd's meta.db
	// and the runtime's bundle) holds no secret value either.
	_, image := containerdEnv(t)
	a.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "holder", image, "echo ready; sleep 1000"))
	for runStatus(t, a, user, "holder")["status"] != "RUNNING" {
		time.Sleep(50 * time.Millisecond)
	}
	ctrdDir := filepath.Dir(socket)
	if hits := grepTree(t, ctrdDir, []byte("super-secret-name")); len(hits) > 0 {
		t.Errorf("while a run is active, the secret value is in plaintext in %v", hits)
	}
	info, err := exec.Command("ctr", "--address", socket, "-n", "hush", "containers", "info", runStatus(t, a, user, "holder")["id"].(string)).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "_entrypoint") || strings.Contains(string(info), "super-secret-name") {
		t.Errorf("ctr containers info: %v\n%s", err, info)
	}
	a.mustHush(user, "", "stop", "run", "holder")

	a.stop()
	ctrdRoot := filepath.Join(ctrdDir, "root")
	for _, dir := range []string{a.dataDir, ctrdRoot} {
		if hits := grepTree(t, dir, []byte("super-secret-name")); len(hits) > 0 {
			t.Errorf("the secret value is in plaintext in %v", hits)
		}
	}
	out, err := exec.Command("ctr", "--address", socket, "-n", "hush", "containers", "ls", "-q").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers left after the runs: %q %v", out, err)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(mounts), filepath.Dir(a.dataDir)) {
		t.Errorf("a run tmpfs is still mounted:\n%s", mounts)
	}
}

// injectionScript prints what each secret type delivered, in a form that
// does not depend on where the runtime put the files.
const injectionScript = `echo "env=$E_VAR"
echo "mounted=$(cat $SECRET_PATH_DATA) $(stat -c %a $SECRET_PATH_DATA)"
echo "ssh=$(head -c 11 $SECRET_PATH_DEPLOY) $(stat -c %a $SECRET_PATH_DEPLOY)"
echo "git=$GIT_SSH_COMMAND" | sed "s#$SECRET_PATH_GIT#KEY#"
echo "s3=$(cat $AWS_CONFIG_FILE) $(cat $AWS_SHARED_CREDENTIALS_FILE) $AWS_PROFILE"
echo "gcp=$(cat $GOOGLE_APPLICATION_CREDENTIALS)"
echo "oci=$(cat $OCI_CONFIG_FILE) $(cat $OCI_CLI_KEY_FILE)"
echo "databricks=$DATABRICKS_HOST $DATABRICKS_TOKEN"
echo "hf=$HF_TOKEN"
echo "paths=$SECRET_PATH_DATA $SECRET_PATH_AWS $GOOGLE_APPLICATION_CREDENTIALS"
`

const injectionWant = `env=env-value
mounted=mounted-value 400
ssh=-----BEGIN  400
git=ssh -o StrictHostKeyChecking=accept-new -i KEY
s3=s3-config s3-creds prod
gcp={"k":1}
oci=oci-config oci-key
databricks=https://x.cloud.databricks.com db-token
hf=hf_token
`

func createEveryType(t *testing.T, a *agent, user string) {
	t.Helper()
	files := t.TempDir()
	key := privateKey("k")
	for _, args := range [][]string{
		{"env", "E_VAR=env-value"},
		{"mounted", writeFile(t, files, "data", "mounted-value"), "--mount-path", "/etc/app/data"},
		{"ssh", writeFile(t, files, "deploy", key)},
		{"git-ssh", writeFile(t, files, "git", key)},
		{"docker", "--username", "u", "--server", "registry.example.com", "--password", "pw"},
		{"s3", "--config-file", writeFile(t, files, "c", "s3-config"), "--credentials-file", writeFile(t, files, "cr", "s3-creds"),
			"--profile", "prod", "--name", "aws"},
		{"gcp", "--credentials-file", writeFile(t, files, "k.json", `{"k":1}`)},
		{"oci", "--config-file", writeFile(t, files, "oc", "oci-config"), "--key-file", writeFile(t, files, "ok", "oci-key")},
		{"databricks", "--host", "https://x.cloud.databricks.com", "--token", "db-token"},
		{"hf", "--token", "hf_token"},
	} {
		a.mustHush(user, "", append([]string{"create", "secret"}, args...)...)
	}
}

func TestRunInjectionContainerd(t *testing.T) {
	_, image := containerdEnv(t)
	a := startRunAgent(t, "containerd")
	user := a.newUser("alice")
	createEveryType(t, a, user)
	r := a.mustHush(user, "", "run", "-f", writeSpec(t, "types", image, injectionScript))
	want := injectionWant + "paths=/etc/app/data /secrets/aws /secrets/gcp/credentials.json\n"
	if !strings.Contains(r.stdout, "\n\n"+want+"\n") {
		t.Errorf("got:\n%s\nwant the log:\n%s", r.stdout, want)
	}
	// Files are read-only in the container, and the values are not in the
	// container's spec.
	r = a.mustHush(user, "", "run", "-f", writeSpec(t, "readonly", image,
		`{ echo x > $SECRET_PATH_DATA; } 2>/dev/null && echo writable || echo read-only; env | grep -c -e env-value -e db-token -e hf_token`))
	if !strings.Contains(r.stdout, "read-only\n3\n") {
		t.Errorf("got %s", r.stdout)
	}
	// Secret mounts are ro,nosuid,nodev,noexec, as DESIGN promises.
	r = a.mustHush(user, "", "run", "-f", writeSpec(t, "mountopts", image,
		`for m in /etc/app/data /secrets/aws /.hush/run; do echo "$m $(grep " $m " /proc/mounts | cut -d' ' -f4)"; done`))
	for _, target := range []string{"/etc/app/data", "/secrets/aws", "/.hush/run"} {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + ` (\S*)$`).FindStringSubmatch(r.stdout)
		if line == nil {
			t.Errorf("no mount options for %s in:\n%s", target, r.stdout)
			continue
		}
		for _, opt := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !slices.Contains(strings.Split(line[1], ","), opt) {
				t.Errorf("%s is mounted %s, without %s", target, line[1], opt)
			}
		}
	}
	r = a.mustHush(user, "", "run", "-f", writeSpec(t, "narrow", image, `echo "[$E_VAR][$HF_TOKEN][${SECRET_PATH_DATA:-}]"`,
		"secrets: [hf]"))
	if !strings.Contains(r.stdout, "[][hf_token][]\n") {
		t.Errorf("narrowed secrets: got %s", r.stdout)
	}
}

func TestRunInjectionExec(t *testing.T) {
	a := startRunAgent(t, "exec")
	user := a.newUser("alice")
	createEveryType(t, a, user)
	r := a.mustHush(user, "", "run", "-f", writeSpec(t, "types", "ignored:latest", injectionScript))
	if !strings.Contains(r.stdout, "\n\n"+injectionWant) {
		t.Errorf("got:\n%s\nwant the log to start:\n%s", r.stdout, injectionWant)
	}
	if !strings.Contains(r.stdout, "i  The exec runtime runs the command on the host and ignores image ignored:latest") {
		t.Errorf("the exec runtime did not say that it ignores the image:\n%s", r.stdout)
	}
	r = a.mustHush(user, "", "run", "-f", writeSpec(t, "narrow", "x", `echo "[$E_VAR][$HF_TOKEN]"`, "secrets: [hf]"))
	if !strings.Contains(r.stdout, "[][hf_token]\n") {
		t.Errorf("narrowed secrets: got %s", r.stdout)
	}
}

func runStatus(t *testing.T, a *agent, token, name string) map[string]any {
	t.Helper()
	code, body := a.request("GET", "/v1/runs/"+name, token, "")
	if code != 200 {
		t.Fatalf("get run %s: %d %s", name, code, body)
	}
	var run map[string]any
	json.Unmarshal([]byte(body), &run)
	return run
}

func TestRunLifecycleContainerd(t *testing.T) {
	_, image := containerdEnv(t)
	a := startRunAgent(t, "containerd")
	user := a.newUser("alice")

	r := a.hush(user, "", "run", "-f", writeSpec(t, "exits", image, "echo bye; exit 3"))
	if r.code != 1 || !strings.Contains(r.stderr, "✗  Run exits failed: the command exited with code 3") {
		t.Errorf("failing run: %s", r)
	}
	table := a.mustHush(user, "", "get", "runs").stdout
	if !regexp.MustCompile(`(?m)^exits\s+FAILED\s+` + regexp.QuoteMeta(image) + `\s+\S+ \S+\s+3$`).MatchString(table) {
		t.Errorf("get runs:\n%s", table)
	}

	r = a.hush(user, "", "run", "-f", writeSpec(t, "noimage", "localhost/does-not-exist:1", "true"))
	if r.code != 1 || !strings.Contains(r.stderr, "Run noimage failed to start: image localhost/does-not-exist:1 is not on this node") {
		t.Errorf("missing image: %s", r)
	}

	r = a.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "sleeper", image, "echo sleeping; sleep 1000"))
	if !strings.Contains(r.stdout, "✔  Run sleeper submitted") {
		t.Errorf("--no-follow: %s", r)
	}
	// Follow the log live while the run is active.
	follow := exec.Command(hushBin, "logs", "sleeper", "-f")
	follow.Env = append(cleanEnv(), "HUSH_ADDR="+a.addr, "HUSH_TOKEN="+user)
	followOut := &syncBuffer{}
	follow.Stdout = followOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(followOut.String(), "sleeping") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	r = a.mustHush(user, "", "stop", "run", "sleeper")
	if !strings.Contains(r.stdout, "✔  Stopping run(s): sleeper") {
		t.Errorf("stop: %s", r)
	}
	for runStatus(t, a, user, "sleeper")["status"] != "STOPPED" && time.Since(start) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if s := runStatus(t, a, user, "sleeper")["status"]; s != "STOPPED" || time.Since(start) > 5*time.Second {
		t.Errorf("after stop: %v after %s, want STOPPED within the 2s grace period", s, time.Since(start))
	}
	if err := follow.Wait(); err != nil || followOut.String() != "sleeping\n" {
		t.Errorf("logs -f: got %q, %v; want it to end with the run", followOut.String(), err)
	}
	if out := a.mustHush(user, "", "logs", "sleeper").stdout; out != "sleeping\n" {
		t.Errorf("replayed logs: got %q", out)
	}
	desc := a.mustHush(user, "", "describe", "run", "sleeper").stdout
	for _, want := range []string{"Status:     STOPPED", "submitted", "started", "stopping: stopped by its owner"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}

	r = a.hush(user, "", "run", "-f", writeSpec(t, "slow", image, "sleep 1000", "scheduling: {max_duration: 1s}"))
	if r.code != 1 || !strings.Contains(r.stderr, "!  Run slow was stopped") {
		t.Errorf("max_duration: %s", r)
	}
	if !strings.Contains(a.mustHush(user, "", "describe", "run", "slow").stdout, "max_duration of 1s") {
		t.Error("describe does not say that max_duration stopped the run")
	}

	a.mustHush(user, "", "delete", "runs", "--all", "-y")
	if out := a.mustHush(user, "", "get", "runs", "-o", "name").stdout; out != "" {
		t.Errorf("runs left after delete --all: %q", out)
	}
}

func TestNestedRunContainerd(t *testing.T) {
	_, image := containerdEnv(t)
	a := startRunAgent(t, "containerd")
	user := a.newUser("alice")
	a.mustHush(user, "", "create", "secret", "env", "SECRET_STUFF=nested-value")
	parent := fmt.Sprintf(`cat "$HUSH_TOKEN_FILE"
printf 'name: child\nimage: %s\ncommand: echo child sees $SECRET_STUFF\n' > /tmp/child.yaml
hush run -f /tmp/child.yaml`, image)
	r := a.mustHush(user, "", "run", "-f", writeSpec(t, "parent", image, parent))
	if !strings.Contains(r.stdout, "child sees nested-value") || !strings.Contains(r.stdout, "✔  Run child completed") {
		t.Errorf("nested run: %s", r)
	}
	token := regexp.MustCompile(`hush_[A-Za-z0-9_-]+`).FindString(r.stdout)
	if token == "" {
		t.Fatalf("parent did not print its token: %s", r.stdout)
	}
	child := runStatus(t, a, user, "child")
	if child["parent"] != runStatus(t, a, user, "parent")["id"] || child["owner"] != "alice" {
		t.Errorf("child run: parent %v owner %v", child["parent"], child["owner"])
	}
	if code, _ := a.request("GET", "/v1/runs", token, ""); code != 401 {
		t.Errorf("the parent's token after the parent ended: got %d, want 401", code)
	}
}

func TestImageImport(t *testing.T) {
	_, image := containerdEnv(t)
	archive := os.Getenv("HUSH_TEST_IMAGE_TAR")
	a := startRunAgent(t, "containerd")
	r := a.mustHush(a.token, "", "image", "import", archive)
	if !strings.Contains(r.stdout, "✔  Imported image "+image) {
		t.Errorf("import: %s", r)
	}
	user := a.newUser("alice")
	if r := a.hush(user, "", "image", "import", archive); r.code != 1 || !strings.Contains(r.stderr, "management token") {
		t.Errorf("import by a user: %s", r)
	}
	if r := a.hush(a.token, "", "image", "import", writeFile(t, t.TempDir(), "x.tar", "not a tar")); r.code != 1 ||
		!strings.Contains(r.stderr, "x.tar is not an image archive (a tar made by `docker save`") {
		t.Errorf("import of a bad archive: %s", r)
	}
	// An archive cut short passes the header check; containerd's error
	// says it ends early.
	whole, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	cut := writeFile(t, t.TempDir(), "cut.tar", string(whole[:len(whole)/2]))
	if r := a.hush(a.token, "", "image", "import", cut); r.code != 1 || !strings.Contains(r.stderr, "is the file whole?") {
		t.Errorf("import of an archive cut short: %s", r)
	}
}

func TestRunDetachAndLimitsContainerd(t *testing.T) {
	_, image := containerdEnv(t)
	a := startRunAgent(t, "containerd")
	user := a.newUser("alice")

	// The limits reach the container's spec (runc enforces them; this
	// machine's containers do not see their cgroup files).
	socket, _ := containerdEnv(t)
	a.mustHush(user, "", "run", "--no-follow", "-f", writeSpec(t, "limits", image, "sleep 1000", "compute: {memory: 64Mi, cpus: 0.5}"))
	for runStatus(t, a, user, "limits")["status"] != "RUNNING" {
		time.Sleep(20 * time.Millisecond)
	}
	info, err := exec.Command("ctr", "--address", socket, "-n", "hush", "containers", "info", runStatus(t, a, user, "limits")["id"].(string)).CombinedOutput()
	if err != nil || !strings.Contains(string(info), `"limit": 67108864`) || !strings.Contains(string(info), `"quota": 50000`) {
		t.Errorf("limits are not in the container spec: %v\n%s", err, info)
	}
	a.mustHush(user, "", "stop", "run", "limits")

	// Ctrl+C while following detaches and leaves the run going.
	cmd := exec.Command(hushBin, "run", "-f", writeSpec(t, "detached", image, "echo up; sleep 1000"))
	cmd.Env = append(cleanEnv(), "HUSH_ADDR="+a.addr, "HUSH_TOKEN="+user)
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "up\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("hush run after Ctrl+C: %v", err)
	}
	if !strings.Contains(out.String(), "Follow it again with `hush logs detached -f`") {
		t.Errorf("no detach message:\n%s", out)
	}
	if s := runStatus(t, a, user, "detached")["status"]; s != "RUNNING" {
		t.Errorf("after detaching: %v, want RUNNING", s)
	}
	a.mustHush(user, "", "delete", "run", "detached", "-y")
	if code, _ := a.request("GET", "/v1/runs/detached", user, ""); code != 404 {
		t.Errorf("deleted run: got %d, want 404", code)
	}
}
