package runs

import (
	"context"
	"errors"
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
	"github.com/hush-sh/hush/sdk/provider"
)

// changingResolver resolves every reference to a value the test changes.
type changingResolver struct {
	mu    sync.Mutex
	value string
	calls int
}

func (*changingResolver) CheckReference(string, string, string) error { return nil }

func (r *changingResolver) Resolve(_ context.Context, _ string, refs []string) ([]provider.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	out := make([]provider.Result, len(refs))
	for i := range refs {
		out[i] = provider.Result{Value: []byte(r.value)}
	}
	return out, nil
}

func (r *changingResolver) set(v string) {
	r.mu.Lock()
	r.value = v
	r.mu.Unlock()
}

// waitOutput waits until the run's log holds want.
func (h *harness) waitOutput(run *store.Run, want string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h.m.Logs(ctx, "alice", run.ID, false, -1, &out, func() {})
		cancel()
		if strings.Contains(out.String(), want) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s: got output %q, want it to hold %q", run.Name, out.String(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func eventsOf(run *store.Run) string {
	var b strings.Builder
	for _, e := range run.Events {
		b.WriteString(string(e.Type) + ": " + e.Message + "\n")
	}
	return b.String()
}

// A value that changes while the run runs reaches its file, replaced
// whole, and the run gets its on_change signal; an event names the
// secret and never holds the value.
func TestRefreshRewritesFileAndSignals(t *testing.T) {
	h := newHarness(t)
	res := &changingResolver{value: "first-value"}
	h.m.cfg.Resolver = res
	h.secret(&store.Secret{Name: "cfg", Type: api.TypeMounted, From: "file:cfg"})
	run := h.submit("signalled", `trap 'echo "hup: $(cat "$SECRET_PATH_CFG")"; exit 0' HUP
echo "start: $(cat "$SECRET_PATH_CFG")"
i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 3`, func(r *api.CreateRunRequest) {
		r.Secrets = []string{"cfg"}
		r.Refresh = api.Refresh{Every: api.Duration(time.Second), OnChange: "signal:hup"}
	})
	h.waitOutput(run, "start: first-value")
	res.set("second-value")
	got, out := h.finish(run)
	if got.Status != api.RunCompleted {
		t.Fatalf("got %s %q, want COMPLETED: the trap exits 0\n%s", got.Status, got.Error, eventsOf(got))
	}
	if want := "start: first-value\nhup: second-value\n"; out != want {
		t.Errorf("got output %q, want %q", out, want)
	}
	events := eventsOf(got)
	for _, want := range []string{
		"secrets: refreshing secret(s) cfg every 1s (on_change: signal:SIGHUP)",
		"changed: secret(s) cfg changed",
		"changed: sent SIGHUP to the workload for changed secret(s) cfg",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("got events\n%s\nwant one with %q", events, want)
		}
	}
	if strings.Contains(events, "value") {
		t.Errorf("an event holds a secret value:\n%s", events)
	}
}

// With on_change: restart, the workload is started again and sees the new
// value in its environment; its log goes on in one piece.
func TestRefreshRestartsWithNewEnv(t *testing.T) {
	h := newHarness(t)
	res := &changingResolver{value: "old-token"}
	h.m.cfg.Resolver = res
	h.secret(&store.Secret{Name: "token", Type: api.TypeEnv, Fields: map[string]string{api.FieldKey: "TOKEN"}, From: "file:token"})
	run := h.submit("restarted", `echo "token=$TOKEN"; [ "$TOKEN" = new-token ] && exit 0; sleep 30; exit 3`, func(r *api.CreateRunRequest) {
		r.Secrets = []string{"token"}
		r.SecretRefresh = map[string]api.Refresh{"token": {Every: api.Duration(time.Second)}}
	})
	h.waitOutput(run, "token=old-token")
	res.set("new-token")
	got, out := h.finish(run)
	if got.Status != api.RunCompleted {
		t.Fatalf("got %s %q, want COMPLETED\n%s", got.Status, got.Error, eventsOf(got))
	}
	if want := "token=old-token\ntoken=new-token\n"; out != want {
		t.Errorf("got output %q, want %q", out, want)
	}
	events := eventsOf(got)
	for _, want := range []string{"changed: secret(s) token changed", "restarted: restarting the workload for changed secret(s) token", "restarted: the workload runs again"} {
		if !strings.Contains(events, want) {
			t.Errorf("got events\n%s\nwant one with %q", events, want)
		}
	}
	if strings.Contains(events, "new-token") || strings.Contains(events, "old-token") {
		t.Errorf("an event holds a secret value:\n%s", events)
	}
}

// A refresh with on_change: none rewrites the file only; a value that did
// not change calls the provider and changes nothing; and the env value of
// a secret that does not restart the run is kept, with a warning.
func TestRefreshNoneKeepsRunning(t *testing.T) {
	h := newHarness(t)
	res := &changingResolver{value: "v1-value"}
	h.m.cfg.Resolver = res
	h.secret(&store.Secret{Name: "cfg", Type: api.TypeMounted, From: "file:cfg"})
	h.secret(&store.Secret{Name: "key", Type: api.TypeEnv, Fields: map[string]string{api.FieldKey: "KEY"}, From: "file:key"})
	run := h.submit("unbothered", `echo "start $KEY"; until [ "$(cat "$SECRET_PATH_CFG")" = v2-value ]; do sleep 0.1; done; echo "file v2, env $KEY"`, func(r *api.CreateRunRequest) {
		r.Secrets = []string{"cfg", "key"}
		r.Refresh = api.Refresh{Every: api.Duration(time.Second), OnChange: api.OnChangeNone}
	})
	h.waitOutput(run, "start v1-value")
	time.Sleep(2500 * time.Millisecond) // refreshes that find nothing new
	res.set("v2-value")
	got, out := h.finish(run)
	if got.Status != api.RunCompleted {
		t.Fatalf("got %s %q, want COMPLETED\n%s", got.Status, got.Error, eventsOf(got))
	}
	if want := "start v1-value\nfile v2, env v1-value\n"; out != want {
		t.Errorf("got output %q, want %q", out, want)
	}
	events := eventsOf(got)
	if n := strings.Count(events, "changed: secret(s) cfg, key changed"); n != 1 {
		t.Errorf("got %d change events, want 1:\n%s", n, events)
	}
	if !strings.Contains(events, "secret(s) key reach the run in environment variables, which keep their old values") {
		t.Errorf("got events\n%s\nwant a warning that key's variable keeps its value", events)
	}
	if strings.Contains(events, "restarted: ") || strings.Contains(events, "sent ") {
		t.Errorf("on_change: none restarted or signalled the run:\n%s", events)
	}
	// The tmpfs is gone with the run: nothing of the values is left.
	if _, err := os.Stat(filepath.Join(h.state, run.ID)); !os.IsNotExist(err) {
		t.Errorf("the run's tmpfs is still there: %v", err)
	}
}

// A run's refresh settings are checked at submit, each problem named, and
// kept as the agent reads them.
func TestRefreshChecked(t *testing.T) {
	h := newHarness(t)
	tests := map[string]struct {
		req     api.CreateRunRequest
		wantErr string
	}{
		"too often": {
			req:     api.CreateRunRequest{Refresh: api.Refresh{Every: api.Duration(100 * time.Millisecond)}},
			wantErr: "refresh of 100ms is shorter than the 1s the agent allows",
		},
		"unknown on_change": {
			req:     api.CreateRunRequest{Refresh: api.Refresh{Every: api.Duration(time.Minute), OnChange: "reload"}},
			wantErr: `refresh: on_change "reload" is not valid`,
		},
		"unknown signal": {
			req:     api.CreateRunRequest{Secrets: []string{"a"}, SecretRefresh: map[string]api.Refresh{"a": {OnChange: "signal:SIGKILL"}}},
			wantErr: `the refresh of secret a: on_change "signal:SIGKILL" names a signal the agent does not send`,
		},
		"secret not listed": {
			req:     api.CreateRunRequest{Secrets: []string{"a"}, SecretRefresh: map[string]api.Refresh{"b": {Every: api.Duration(time.Minute)}}},
			wantErr: "the run sets a refresh for secret(s) b, which its secrets list does not name",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := tc.req
			req.Name, req.Command = "checked", "true"
			_, err := h.m.Submit("alice", Submitter{}, &req)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want ErrInvalid with %q", err, tc.wantErr)
			}
		})
	}
	h.secret(&store.Secret{Name: "a", Type: api.TypeEnv, Fields: map[string]string{api.FieldKey: "A"}, Data: map[string][]byte{api.FieldValue: []byte("x")}})
	run := h.submit("kept", "true", func(r *api.CreateRunRequest) {
		r.Secrets = []string{"a"}
		r.SecretRefresh = map[string]api.Refresh{"a": {Every: api.Duration(time.Minute), OnChange: "signal:usr1"}}
	})
	if got := run.SecretRefresh["a"]; got.OnChange != "signal:SIGUSR1" || time.Duration(got.Every) != time.Minute {
		t.Errorf("got %+v, want every 1m0s with on_change signal:SIGUSR1", got)
	}
}

// An agent that restarts under a refreshing run goes on refreshing it from
// what its state dir records: a value that changes after the restart
// restarts the adopted workload, whose log goes on in one piece.
func TestRefreshAfterAgentRestart(t *testing.T) {
	h, res, run := leftRefreshingRun(t, time.Second)
	h.m = h.manager()
	res.set("after-restart")
	got := h.finishRestarted(run)
	events := eventsOf(got)
	for _, want := range []string{"adopted: ", "changed: secret(s) token changed", "restarted: the workload runs again"} {
		if !strings.Contains(events, want) {
			t.Errorf("got events\n%s\nwant one with %q", events, want)
		}
	}
}

// With mask_secrets, a refreshed value is masked in the log of a workload
// that goes on running, as its first value was.
func TestRefreshedValueMasked(t *testing.T) {
	h := newHarness(t)
	res := &changingResolver{value: "first-masked-value"}
	h.m.cfg.Resolver = res
	h.secret(&store.Secret{Name: "cfg", Type: api.TypeMounted, From: "file:cfg"})
	mask := true
	run := h.submit("masked", `trap 'echo "hup: $(cat "$SECRET_PATH_CFG")"; exit 0' HUP
echo "start: $(cat "$SECRET_PATH_CFG")"
i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 3`, func(r *api.CreateRunRequest) {
		r.Secrets = []string{"cfg"}
		r.MaskSecrets = &mask
		r.Refresh = api.Refresh{Every: api.Duration(time.Second), OnChange: "signal:SIGHUP"}
	})
	h.waitOutput(run, "start: ***")
	res.set("second-masked-value")
	got, out := h.finish(run)
	if got.Status != api.RunCompleted {
		t.Fatalf("got %s %q, want COMPLETED\n%s", got.Status, got.Error, eventsOf(got))
	}
	if want := "start: ***\nhup: ***\n"; out != want {
		t.Errorf("got output %q, want %q", out, want)
	}
}

// A refresh gives only secrets the run refreshes and was granted: asking
// for none is not asking for all of the owner's.
func TestRefreshGivesOnlyWhatTheRunRefreshes(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"a", "b", "c"} {
		h.secret(&store.Secret{Name: name, Type: api.TypeEnv, Fields: map[string]string{api.FieldKey: strings.ToUpper(name)}, Data: map[string][]byte{api.FieldValue: []byte("value-" + name)}})
	}
	run := &store.Run{ID: "run", Owner: "alice", Secrets: []string{"a", "b"},
		SecretRefresh: map[string]api.Refresh{"a": {Every: api.Duration(time.Minute)}}}
	for what, names := range map[string][]string{"none": nil, "empty": {}, "not refreshed": {"b"}, "not granted": {"c"}} {
		got, err := h.m.Refresh(context.Background(), run, names)
		if err != nil || len(got.Secrets) != 0 {
			t.Errorf("%s: got %d secrets (%v), want none", what, len(got.Secrets), err)
		}
	}
	got, err := h.m.Refresh(context.Background(), run, []string{"a", "b", "c"})
	if err != nil || len(got.Secrets) != 1 || got.Secrets[0].Name != "a" {
		t.Errorf("got %v (%v), want secret a alone", got, err)
	}
	child := &store.Run{ID: "child", Owner: "alice", Parent: "run", SecretLimit: []string{"b"}, Refresh: api.Refresh{Every: api.Duration(time.Minute)}}
	got, err = h.m.Refresh(context.Background(), child, []string{"a", "b"})
	if err != nil || len(got.Secrets) != 1 || got.Secrets[0].Name != "b" {
		t.Errorf("child run: got %v (%v), want secret b alone, its parent's", got, err)
	}
}

// A change that an agent wrote to the run's tmpfs but left before telling
// the workload of is told by the agent that adopts the run.
func TestPendingChangeToldAfterAgentRestart(t *testing.T) {
	h, _, run := leftRefreshingRun(t, time.Hour)

	// What the agent had done when it left: the new value written, the
	// workload not yet restarted.
	envPath := filepath.Join(h.state, run.ID, envFile)
	if err := os.WriteFile(envPath, []byte("TOKEN=after-restart"), 0o400); err != nil {
		t.Fatal(err)
	}
	st, err := h.m.loadRunState(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Pending = &pendingChange{Seq: 1, Names: []string{"token"}, Restart: true}
	if err := h.m.saveRunState(run.ID, st); err != nil {
		t.Fatal(err)
	}

	h.m = h.manager()
	h.finishRestarted(run)
	if st, err := h.m.loadRunState(run.ID); err == nil {
		t.Errorf("the run's refresh state outlived it: %+v", st)
	}
}

// leftRefreshingRun starts a run whose env secret TOKEN is refreshed every
// interval with on_change: restart, and shuts its manager down leaving it
// running, for the test to start another.
func leftRefreshingRun(t *testing.T, every time.Duration) (*harness, *changingResolver, *store.Run) {
	h := newHarness(t)
	res := &changingResolver{value: "before-restart"}
	h.resolver, h.leave = res, true
	h.m.Shutdown(context.Background())
	h.m = h.manager()
	h.secret(&store.Secret{Name: "token", Type: api.TypeEnv, Fields: map[string]string{api.FieldKey: "TOKEN"}, From: "file:token"})
	run := h.submit("adopted", `echo "token=$TOKEN"; [ "$TOKEN" = after-restart ] && exit 0; sleep 30; exit 3`, func(r *api.CreateRunRequest) {
		r.Refresh = api.Refresh{Every: api.Duration(every), OnChange: api.OnChangeRestart}
	})
	h.waitOutput(run, "token=before-restart")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.m.Shutdown(ctx)
	return h, res, run
}

// finishRestarted checks that the run of leftRefreshingRun completed once
// restarted with the new value, its log in one piece.
func (h *harness) finishRestarted(run *store.Run) *store.Run {
	h.t.Helper()
	got, out := h.finish(run)
	if got.Status != api.RunCompleted {
		h.t.Fatalf("got %s %q, want COMPLETED\n%s", got.Status, got.Error, eventsOf(got))
	}
	if want := "token=before-restart\ntoken=after-restart\n"; out != want {
		h.t.Errorf("got output %q, want %q", out, want)
	}
	return got
}

// An agent that stopped in the middle of a restart for changed secrets,
// after the old workload was removed and before the new one started,
// leaves no workload: the next agent starts it, rather than find the run
// LOST.
func TestRestartLeftHalfDone(t *testing.T) {
	h, _, run := leftRefreshingRun(t, time.Hour)
	rt, err := runtime.NewExecIn(hclog.NewNullLogger(), h.state+"-supervisors")
	if err != nil {
		t.Fatal(err)
	}
	task, err := rt.Adopt(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := task.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.state, run.ID, envFile), []byte("TOKEN=after-restart"), 0o400); err != nil {
		t.Fatal(err)
	}
	st, err := h.m.loadRunState(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Pending = &pendingChange{Seq: 1, Names: []string{"token"}, Restart: true}
	if err := h.m.saveRunState(run.ID, st); err != nil {
		t.Fatal(err)
	}

	h.m = h.manager()
	got := h.finishRestarted(run)
	events := eventsOf(got)
	if !strings.Contains(events, "restarted: the agent stopped while it restarted the workload") {
		t.Errorf("got events\n%s\nwant one saying the restart was finished", events)
	}
	if n := strings.Count(events, "restarting the workload"); n != 0 {
		t.Errorf("the workload was restarted %d more times:\n%s", n, events)
	}
}
