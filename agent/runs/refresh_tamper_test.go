package runs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// A run's user owns its tmpfs on the sandboxed exec runtime, and may
// replace what is in it while it runs. A refresh then neither writes
// through a link the run planted, nor starts what a file the run planted
// names: the agent's own state is outside the tmpfs.
func TestRefreshIgnoresWhatTheRunPlants(t *testing.T) {
	t.Run("a link out of the tmpfs", func(t *testing.T) {
		h := newHarness(t)
		res := &changingResolver{value: "first-value"}
		h.m.cfg.Resolver = res
		h.secret(&store.Secret{Name: "cfg", Type: api.TypeMounted, From: "file:cfg"})
		run := h.submit("planted-link", `echo started; sleep 30`, func(r *api.CreateRunRequest) {
			r.Secrets = []string{"cfg"}
			r.Refresh = api.Refresh{Every: api.Duration(time.Second), OnChange: api.OnChangeNone}
		})
		h.waitOutput(run, "started")
		outside := t.TempDir()
		dir := filepath.Join(h.state, run.ID, filesDir, "cfg")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, dir); err != nil {
			t.Fatal(err)
		}
		res.set("second-value")
		h.waitEvent(run, "refresh: write the new values of secret(s) cfg")
		if entries, _ := os.ReadDir(outside); len(entries) > 0 {
			t.Errorf("the refresh wrote through the run's link, outside its tmpfs: %v", entries)
		}
		h.m.Stop("alice", run.ID)
		h.finish(run)
	})

	t.Run("a workload spec", func(t *testing.T) {
		h, res, run := leftRefreshingRun(t, time.Second)
		h.m = h.manager()
		marker := filepath.Join(t.TempDir(), "ran")
		evil := filepath.Join(t.TempDir(), "evil")
		if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		planted := `{"ID":"` + run.ID + `","Command":"true","HushBinary":"` + evil + `","RunDir":"` + filepath.Join(h.state, run.ID) + `","EnvFile":"env"}`
		if err := os.WriteFile(filepath.Join(h.state, run.ID, "workload.json"), []byte(planted), 0o644); err != nil {
			t.Fatal(err)
		}
		res.set("after-restart")
		h.finishRestarted(run)
		if _, err := os.Stat(marker); err == nil {
			t.Error("the restart ran the binary that a file the run planted named")
		}
	})
}

// waitEvent waits until one of the run's events holds want.
func (h *harness) waitEvent(run *store.Run, want string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := h.m.Get("alice", run.ID)
		if err != nil {
			h.t.Fatal(err)
		}
		if strings.Contains(eventsOf(r), want) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s: got events\n%s\nwant one with %q", run.Name, eventsOf(r), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
