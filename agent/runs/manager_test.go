package runs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
)

// TestMain lets the test binary serve as the hush entrypoint and exec
// supervisor, which the exec runtime starts as `HUSH _supervise DIR` and
// `HUSH _entrypoint --env-file F -- argv...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == runtime.SuperviseCommand {
		os.Exit(runtime.SuperviseMain(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 4 && os.Args[1] == "_entrypoint" {
		if err := runtime.Entrypoint(os.Args[3], os.Args[5:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(127)
		}
	}
	os.Exit(m.Run())
}

type harness struct {
	t       *testing.T
	store   *store.Store
	m       *Manager
	dataDir string
	state   string
	// resolver, when set, is the resolver of the managers manager makes.
	resolver Resolver
	// leave makes those managers leave their runs going when they shut
	// down.
	leave bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dataDir: filepath.Join(dir, "data"), state: filepath.Join(dir, "state")}
	st, err := store.Open(h.dataDir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	h.m = h.manager()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.m.Shutdown(ctx)
		st.Close()
	})
	return h
}

func (h *harness) manager() *Manager {
	h.t.Helper()
	var rt runtime.Runtime = runtime.NewExec(hclog.NewNullLogger())
	if h.leave {
		// Runs that outlive a manager need supervisors that a later
		// one finds.
		exec, err := runtime.NewExecIn(hclog.NewNullLogger(), h.state+"-supervisors")
		if err != nil {
			h.t.Fatal(err)
		}
		rt = exec
	}
	m, err := NewManager(context.Background(), Config{
		Store: h.store, Runtime: rt,
		LogDir: filepath.Join(h.dataDir, "logs"), StateDir: h.state, KeyDir: h.state + "-keys",
		HushBinary: os.Args[0], AgentAddr: "http://127.0.0.1:1", StopGrace: 500 * time.Millisecond,
		Logger: hclog.NewNullLogger(), Resolver: h.resolver, LeaveRunsOnShutdown: h.leave,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) secret(sec *store.Secret) {
	h.t.Helper()
	sec.Owner = "alice"
	sec.ID = "id-" + sec.Name
	if _, err := h.store.CreateSecret(sec); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) submit(name, command string, mod ...func(*api.CreateRunRequest)) *store.Run {
	h.t.Helper()
	req := &api.CreateRunRequest{Name: name, Command: command}
	for _, f := range mod {
		f(req)
	}
	run, err := h.m.Submit("alice", Submitter{}, req)
	if err != nil {
		h.t.Fatal(err)
	}
	return run
}

// finish waits for a run to end and returns it with its whole log.
func (h *harness) finish(run *store.Run) (*store.Run, string) {
	h.t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.m.Logs(ctx, "alice", run.ID, true, -1, &out, func() {}); err != nil {
		h.t.Fatal(err)
	}
	for {
		r, err := h.m.Get("alice", run.ID)
		if err != nil {
			h.t.Fatal(err)
		}
		if r.Status.Done() {
			return r, out.String()
		}
		if ctx.Err() != nil {
			h.t.Fatalf("run %s did not end: %s", run.Name, r.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func envSecret(name, key, value string) *store.Secret {
	return &store.Secret{Name: name, Type: api.TypeEnv, Fields: map[string]string{api.FieldKey: key},
		Data: map[string][]byte{api.FieldValue: []byte(value)}}
}

func TestHelloSecret(t *testing.T) {
	h := newHarness(t)
	h.secret(envSecret("secret-stuff", "SECRET_STUFF", "super-secret-name"))
	run, out := h.finish(h.submit("hello", "echo Hello $SECRET_STUFF!"))
	if out != "Hello super-secret-name!\n" {
		t.Errorf("got output %q, want Hello super-secret-name!", out)
	}
	if run.Status != api.RunCompleted || run.ExitCode == nil || *run.ExitCode != 0 {
		t.Errorf("got %s exit %v, want COMPLETED 0", run.Status, run.ExitCode)
	}
	if run.StartedAt == nil || run.EndedAt == nil {
		t.Error("started_at or ended_at missing")
	}
	for _, want := range []string{"submitted", "secrets", "started", "exited"} {
		if !hasEvent(run, want) {
			t.Errorf("no %q event in %+v", want, run.Events)
		}
	}
	if hits := grep(t, h.dataDir, "super-secret-name"); len(hits) > 0 {
		t.Errorf("the secret value is in plaintext in %v", hits)
	}
	if _, err := os.Stat(filepath.Join(h.state, run.ID)); !os.IsNotExist(err) {
		t.Errorf("run dir still exists after the run: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(mounts), run.ID) {
		t.Error("the run's tmpfs is still mounted")
	}
}

func hasEvent(r *store.Run, typ string) bool {
	for _, e := range r.Events {
		if string(e.Type) == typ {
			return true
		}
	}
	return false
}

func grep(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(needle)) {
				hits = append(hits, p)
			}
		}
		return nil
	})
	return hits
}

func TestExitCodeAndEnvOverride(t *testing.T) {
	h := newHarness(t)
	h.secret(envSecret("level", "LEVEL", "from-secret"))
	run, out := h.finish(h.submit("fails", "echo $LEVEL; exit 3", func(r *api.CreateRunRequest) {
		r.Env = map[string]string{"LEVEL": "from-spec"}
	}))
	if out != "from-spec\n" {
		t.Errorf("got %q, want the spec's env_variables to win", out)
	}
	if run.Status != api.RunFailed || run.ExitCode == nil || *run.ExitCode != 3 {
		t.Errorf("got %s exit %v, want FAILED 3", run.Status, run.ExitCode)
	}
	if !strings.Contains(run.Error, "exited with code 3") {
		t.Errorf("error %q does not give the exit code", run.Error)
	}
	if !hasEvent(run, "env") {
		t.Error("no event says that env_variables overrode a secret")
	}
}

func TestRunEnvironment(t *testing.T) {
	h := newHarness(t)
	run, out := h.finish(h.submit("env", `echo "$RUN_NAME $HUSH_RUN_ID $HUSH_ADDR"; cat "$HUSH_TOKEN_FILE"; command -v `+filepath.Base(os.Args[0])))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "env "+run.ID+" http://127.0.0.1:1" {
		t.Fatalf("got %q", out)
	}
	if !strings.HasPrefix(lines[1], store.TokenPrefix) {
		t.Errorf("token file holds %q", lines[1])
	}
	if _, err := h.store.LookupToken(lines[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the run's token still works after the run: %v", err)
	}
	if lines[2] != os.Args[0] {
		t.Errorf("hush on PATH: got %q, want %q", lines[2], os.Args[0])
	}
}

func TestEveryTypeInjected(t *testing.T) {
	h := newHarness(t)
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n"
	h.secret(envSecret("e", "E_VAR", "env-value"))
	h.secret(&store.Secret{Name: "m", Type: api.TypeMounted, Data: map[string][]byte{"value": []byte("mounted-value")}})
	h.secret(&store.Secret{Name: "deploy", Type: api.TypeSSH, Data: map[string][]byte{"value": []byte(key)}})
	h.secret(&store.Secret{Name: "git", Type: api.TypeGitSSH, Data: map[string][]byte{"value": []byte(key)}})
	h.secret(&store.Secret{Name: "reg", Type: api.TypeDocker, Fields: map[string]string{"username": "u", "server": "r.io"},
		Data: map[string][]byte{"password": []byte("pw")}})
	h.secret(&store.Secret{Name: "aws", Type: api.TypeS3, Fields: map[string]string{"profile": "prod"},
		Data: map[string][]byte{"config": []byte("s3-config"), "credentials": []byte("s3-creds")}})
	h.secret(&store.Secret{Name: "gcp", Type: api.TypeGCP, Data: map[string][]byte{"credentials": []byte(`{"k":1}`)}})
	h.secret(&store.Secret{Name: "oci", Type: api.TypeOCI, Data: map[string][]byte{"config": []byte("oci-config"), "key": []byte("oci-key")}})
	h.secret(&store.Secret{Name: "db", Type: api.TypeDatabricks, Fields: map[string]string{"host": "https://x.databricks.com"},
		Data: map[string][]byte{"token": []byte("db-token")}})
	h.secret(&store.Secret{Name: "hf", Type: api.TypeHF, Data: map[string][]byte{"token": []byte("hf_token")}})

	script := `
echo "env=$E_VAR"
echo "mounted=$(cat $SECRET_PATH_M) $(stat -c %a $SECRET_PATH_M)"
echo "ssh=$(head -c 11 $SECRET_PATH_DEPLOY) $(stat -c %a $SECRET_PATH_DEPLOY)"
echo "git=$GIT_SSH_COMMAND" | sed "s#$SECRET_PATH_GIT#KEY#"
echo "s3=$(cat $AWS_CONFIG_FILE) $(cat $AWS_SHARED_CREDENTIALS_FILE) $AWS_PROFILE"
echo "gcp=$(cat $GOOGLE_APPLICATION_CREDENTIALS)"
echo "oci=$(cat $OCI_CONFIG_FILE) $(cat $OCI_CLI_KEY_FILE) $([ $OCI_CLI_CONFIG_FILE = $OCI_CONFIG_FILE ] && echo same)"
echo "databricks=$DATABRICKS_HOST $DATABRICKS_TOKEN"
echo "hf=$HF_TOKEN"
echo "dir=$(stat -c %a $(dirname $HUSH_TOKEN_FILE))"
env | grep -c pw || true
`
	run, out := h.finish(h.submit("types", script))
	want := `env=env-value
mounted=mounted-value 400
ssh=-----BEGIN  400
git=ssh -o StrictHostKeyChecking=accept-new -i KEY
s3=s3-config s3-creds prod
gcp={"k":1}
oci=oci-config oci-key same
databricks=https://x.databricks.com db-token
hf=hf_token
dir=700
0
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if run.Status != api.RunCompleted {
		t.Errorf("got %s: %s", run.Status, run.Error)
	}

	// A narrowed list leaves the others out.
	_, out = h.finish(h.submit("narrow", `echo "[$E_VAR][$HF_TOKEN][${SECRET_PATH_M:-}]"`, func(r *api.CreateRunRequest) {
		r.Secrets = []string{"hf"}
	}))
	if out != "[][hf_token][]\n" {
		t.Errorf("narrowed: got %q, want only HF_TOKEN", out)
	}

	// Asking for a secret that does not exist fails the run and says which.
	run, _ = h.finish(h.submit("missing", "true", func(r *api.CreateRunRequest) { r.Secrets = []string{"nope"} }))
	if run.Status != api.RunFailed || !strings.Contains(run.Error, "secret(s) nope, which do not exist") {
		t.Errorf("missing secret: got %s %q", run.Status, run.Error)
	}
}

// A git-ssh secret with known_hosts has git check hosts against it, with
// the file beside the key; one without, such as one stored before secrets
// had known_hosts, trusts a host's key on first use (TestEveryTypeInjected).
func TestGitSSHKnownHosts(t *testing.T) {
	h := newHarness(t)
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n"
	knownHosts := "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	h.secret(&store.Secret{Name: "git", Type: api.TypeGitSSH,
		Data: map[string][]byte{"value": []byte(key), "known_hosts": []byte(knownHosts)}})
	script := `
kh=$(dirname $SECRET_PATH_GIT)/known_hosts
echo "git=$GIT_SSH_COMMAND" | sed -e "s#$kh#KNOWN_HOSTS#" -e "s#$SECRET_PATH_GIT#KEY#"
echo "known_hosts=$(grep -c ssh-ed25519 $kh) $(stat -c %a $kh)"
`
	run, out := h.finish(h.submit("git", script))
	want := `git=ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=KNOWN_HOSTS -i KEY
known_hosts=1 400
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if run.Status != api.RunCompleted {
		t.Errorf("got %s: %s", run.Status, run.Error)
	}
}

func TestStopAndMaxDuration(t *testing.T) {
	h := newHarness(t)
	run := h.submit("sleeper", "echo started; sleep 1000")
	waitStatus(t, h.m, run.ID, api.RunRunning)
	for i := 0; i < 500; i++ {
		var b bytes.Buffer
		h.m.Logs(context.Background(), "alice", run.ID, false, -1, &b, func() {})
		if b.String() != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if _, err := h.m.Stop("alice", "sleeper"); err != nil {
		t.Fatal(err)
	}
	run, out := h.finish(run)
	if run.Status != api.RunStopped {
		t.Errorf("got %s, want STOPPED", run.Status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	if out != "started\n" {
		t.Errorf("got %q", out)
	}
	want := "run sleeper has already ended (STOPPED): nothing to stop"
	if _, err := h.m.Stop("alice", "sleeper"); !errors.Is(err, ErrEnded) || err.Error() != want {
		t.Errorf("stopping an ended run: got %v, want ErrEnded saying %q", err, want)
	}

	// A command that ignores SIGTERM is killed after the grace period.
	run = h.submit("stubborn", "trap '' TERM; sleep 1000", func(r *api.CreateRunRequest) {
		r.MaxDuration = api.Duration(200 * time.Millisecond)
	})
	run, _ = h.finish(run)
	if run.Status != api.RunStopped || !strings.Contains(eventText(run), "max_duration of 200ms") {
		t.Errorf("max_duration: got %s, events %s", run.Status, eventText(run))
	}
}

func eventText(r *store.Run) string {
	var b strings.Builder
	for _, e := range r.Events {
		fmt.Fprintf(&b, "%s: %s\n", e.Type, e.Message)
	}
	return b.String()
}

func waitStatus(t *testing.T, m *Manager, id string, want api.RunStatus) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		r, err := m.Get("alice", id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("run %s never reached %s", id, want)
}

func TestLogsFollowAndReplay(t *testing.T) {
	h := newHarness(t)
	run := h.submit("counter", "for i in 1 2 3 4 5; do echo line $i; sleep 0.05; done")
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b bytes.Buffer
			if err := h.m.Logs(context.Background(), "alice", run.Name, true, -1, &b, func() {}); err != nil {
				t.Error(err)
			}
			outs[i] = b.String()
		}()
	}
	wg.Wait()
	want := "line 1\nline 2\nline 3\nline 4\nline 5\n"
	for i, o := range outs {
		if o != want {
			t.Errorf("follower %d got %q, want %q", i, o, want)
		}
	}
	var tail bytes.Buffer
	if err := h.m.Logs(context.Background(), "alice", run.Name, false, 2, &tail, func() {}); err != nil {
		t.Fatal(err)
	}
	if tail.String() != "line 4\nline 5\n" {
		t.Errorf("tail 2: got %q", tail.String())
	}
	// The log survives a new manager, as after an agent restart.
	m2 := h.manager()
	var replay bytes.Buffer
	if err := m2.Logs(context.Background(), "alice", run.ID, true, -1, &replay, func() {}); err != nil || replay.String() != want {
		t.Errorf("replay: got %q, %v", replay.String(), err)
	}
	if _, err := h.m.Get("bob", run.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("another user reads the run: got %v, want ErrNotFound", err)
	}
	if err := h.m.Delete(context.Background(), "alice", run.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.m.logDir(run.ID)); !os.IsNotExist(err) {
		t.Errorf("log still there after delete: %v", err)
	}
}

func TestNamesAndValidation(t *testing.T) {
	h := newHarness(t)
	a := h.submit("same", "true")
	b := h.submit("same", "true")
	if a.Name != "same" || !strings.HasPrefix(b.Name, "same-") || len(b.Name) != len("same-")+4 {
		t.Errorf("got names %q and %q, want same and same-XXXX", a.Name, b.Name)
	}
	h.finish(a)
	h.finish(b)
	_, err := h.m.Submit("alice", Submitter{}, &api.CreateRunRequest{Name: "Bad_Name", Command: " "})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "run name") || !strings.Contains(err.Error(), "command is empty") {
		t.Errorf("got %v, want both problems", err)
	}
}

// TestImageReferenceValidated is issue 17 item 7: an image reference that
// is not one is refused at submit, saying what is wrong and showing a valid
// one, instead of failing later at the pull with a DNS error.
func TestImageReferenceValidated(t *testing.T) {
	h := newHarness(t)
	tests := map[string]struct {
		image string
		want  string
	}{
		"uppercase and double colon": {"UPPER/Case::x", "must be lowercase"},
		"space":                      {"busy box", "invalid reference format"},
		"url":                        {"https://ghcr.io/org/app", "drop the scheme"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := h.m.Submit("alice", Submitter{}, &api.CreateRunRequest{Name: "img", Image: tc.image, Command: "true"})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), api.ImageRefExample) {
				t.Errorf("got %v, want ErrInvalid saying %q and showing %s", err, tc.want, api.ImageRefExample)
			}
		})
	}
	run := h.submit("img", "true", func(r *api.CreateRunRequest) { r.Image = "ghcr.io/org/app:v1" })
	if got, _ := h.finish(run); got.Status != api.RunCompleted {
		t.Errorf("a valid reference: got %s, want COMPLETED", got.Status)
	}
}

// TestRestartWithoutWorkloads: a restarted agent whose runtime has no
// workload for a run that had started marks it LOST, never FAILED, and
// starts again a run that had not started.
func TestRestartWithoutWorkloads(t *testing.T) {
	h := newHarness(t)
	gone := &store.Run{ID: "01GONE", Name: "gone", Owner: "alice", Status: api.RunRunning, CreatedAt: time.Now()}
	queued := &store.Run{ID: "01QUEUED", Name: "queued", Owner: "alice", Command: "echo started again",
		Status: api.RunStarting, CreatedAt: time.Now(), MaxLogBytes: 1 << 20}
	for _, r := range []*store.Run{gone, queued} {
		if err := h.store.CreateRun(r); err != nil {
			t.Fatal(err)
		}
	}
	// What an agent that died while it ended or deleted a run left.
	stray := ulid.Make().String()
	for _, dir := range []string{filepath.Join(h.state, stray), filepath.Join(h.dataDir, "logs", stray), filepath.Join(h.state, "not-a-run")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	h.m = h.manager()
	for _, dir := range []string{filepath.Join(h.state, stray), filepath.Join(h.dataDir, "logs", stray)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is left after the restart: %v", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(h.state, "not-a-run")); err != nil {
		t.Errorf("a dir that is not a run's was removed: %v", err)
	}
	got, err := h.store.GetRun(gone.Owner, gone.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != api.RunLost || !strings.Contains(got.Error, "workload was gone from the exec runtime") ||
		got.Events[len(got.Events)-1].Type != store.EventLost {
		t.Errorf("got %s %q, want LOST with an event saying its workload was gone", got.Status, got.Error)
	}
	again, out := h.finish(queued)
	if again.Status != api.RunCompleted || out != "started again\n" {
		t.Errorf("the run that had not started: got %s with output %q, want COMPLETED with its output", again.Status, out)
	}
}
