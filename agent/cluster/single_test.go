package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}})
}

// testWriter sends logs to t.Log, so they show only for failed tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustApply(t testing.TB, n *Node, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Apply(ctx, []byte(cmd))
	if err != nil {
		t.Fatalf("apply %q on %s: %v", cmd, n.id, err)
	}
	return string(res)
}

func TestSingleNodeRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() (*Node, *testFSM) {
		t.Helper()
		fsm := newTestFSM(t, dir)
		n, err := New(Config{NodeID: "one", DataDir: dir}, fsm, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown() })
		return n, fsm
	}
	n, fsm := open()
	for i := range 5 {
		if got := mustApply(t, n, fmt.Sprintf("set k%d v%d", i, i)); got != "ok" {
			t.Fatalf("got %q, want ok", got)
		}
	}
	// An FSM error travels in the result, not as Apply's error.
	if got := mustApply(t, n, "del nope"); got != "error: no such key nope" {
		t.Errorf("got %q, want the FSM's error", got)
	}
	if err := n.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := n.State(); got != "leader" {
		t.Errorf("got state %q, want leader", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", "raft.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cluster of one keeps its log in memory, but raft/raft.db: %v", err)
	}
	want := fsm.kv()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}

	n, fsm = open()
	// A new log begins: the FSM keeps its state and applies the new
	// log's commands from its first.
	if got := mustApply(t, n, "set after restart"); got != "ok" {
		t.Fatalf("got %q, want ok", got)
	}
	applies, replays, _ := fsm.counts()
	if applies != 1 || replays != 0 {
		t.Errorf("got %d applies and %d replays after restart, want 1 and 0", applies, replays)
	}
	want["after"] = "restart"
	if got := fsm.kv(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got state %v, want %v", got, want)
	}
	ms, err := n.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].ID != "one" || !ms[0].Leader || !ms[0].Healthy {
		t.Errorf("got members %+v, %v, want one healthy leader", ms, err)
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	n, err := New(Config{NodeID: "one", DataDir: dir}, newTestFSM(t, dir), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown()

	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"renamed node":     {Config{NodeID: "two", DataDir: dir}, `node id "two" differs from "one"`},
		"no node id":       {Config{DataDir: t.TempDir()}, "node id is empty"},
		"server, no TLS":   {Config{NodeID: "a", DataDir: t.TempDir(), Server: &ServerConfig{RaftBind: "127.0.0.1:0", APIAddr: "127.0.0.1:1", BootstrapExpect: 1}}, "server mode needs TLS"},
		"server, no bind":  {Config{NodeID: "a", DataDir: t.TempDir(), Server: &ServerConfig{APIAddr: "127.0.0.1:1", BootstrapExpect: 1}}, "needs raft_bind"},
		"server, expect 0": {Config{NodeID: "a", DataDir: t.TempDir(), Server: &ServerConfig{RaftBind: "127.0.0.1:0", APIAddr: "127.0.0.1:1"}}, "bootstrap_expect must be at least 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg, newTestFSM(t, t.TempDir()), testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
