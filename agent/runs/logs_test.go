package runs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

func dirSize(t *testing.T, dir string) (total int64, files int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		files++
	}
	return total, files
}

var markerRe = regexp.MustCompile(`^\[hush: ([0-9.]+ (?:bytes|KiB|MiB|GiB)) of earlier output dropped: this run's log is capped at 64 KiB\]\n`)

// TestCappedRun runs a workload that prints more than its cap, and one
// that asks for more than the agent allows.
func TestCappedRun(t *testing.T) {
	h := newHarness(t)
	run := h.submit("chatty", "seq 1 100000", func(r *api.CreateRunRequest) { r.MaxLogBytes = 64 << 10 })
	if run.MaxLogBytes != 64<<10 {
		t.Errorf("got max_log_bytes %d, want %d", run.MaxLogBytes, 64<<10)
	}
	h.finish(run) // a follower that keeps up sees all of the output
	var all bytes.Buffer
	if err := h.m.Logs(context.Background(), "alice", run.ID, false, -1, &all, func() {}); err != nil {
		t.Fatal(err)
	}
	if out := all.String(); !markerRe.MatchString(out) || !strings.HasSuffix(out, "\n99999\n100000\n") {
		t.Errorf("got %.100q...%q, want the marker, then the end of the output", out, out[max(0, len(out)-20):])
	}
	var tail bytes.Buffer
	if err := h.m.Logs(context.Background(), "alice", run.ID, false, 1, &tail, func() {}); err != nil || tail.String() != "100000\n" {
		t.Errorf("tail 1: got %q, %v", tail.String(), err)
	}
	if size, _ := dirSize(t, h.m.logDir(run.ID)); size > 64<<10 {
		t.Errorf("the log holds %d bytes on disk, over its cap", size)
	}
	if d := h.submit("default", "true"); d.MaxLogBytes != defaultLogSize {
		t.Errorf("got max_log_bytes %d, want the agent's %d", d.MaxLogBytes, defaultLogSize)
	}

	_, err := h.m.Submit("alice", Submitter{}, &api.CreateRunRequest{Name: "greedy", Command: "true", MaxLogBytes: 1 << 30})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "max_log_size 1024 MiB (1073741824 bytes) is over this agent's max_log_size of 64 MiB") {
		t.Errorf("got %v, want a refusal naming both caps", err)
	}
}

// TestLegacyLog reads a log written by hush 0.1, as an upgraded agent
// finds it, and deletes it with its run.
func TestLegacyLog(t *testing.T) {
	const id = "01M8RX5RTH4WVCKDNHR9X5JX7H"
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testdata", "datadir-0.1"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "keyring"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := NewManager(context.Background(), Config{
		Store: st, Runtime: runtime.NewExec(hclog.NewNullLogger()), LogDir: filepath.Join(dir, "logs"),
		StateDir: t.TempDir(), KeyDir: t.TempDir(), HushBinary: os.Args[0], Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := "line 0\nline 1\nline 2\nline 3\nline 4\n"
	tests := map[string]struct {
		follow bool
		tail   int
		want   func(string) bool
	}{
		"all":         {false, -1, func(s string) bool { return strings.HasPrefix(s, "old run says ") && strings.HasSuffix(s, lines) }},
		"follow":      {true, -1, func(s string) bool { return strings.HasSuffix(s, lines) }},
		"tail 2":      {false, 2, func(s string) bool { return s == "line 3\nline 4\n" }},
		"tail 0":      {false, 0, func(s string) bool { return s == "" }},
		"tail follow": {true, 1, func(s string) bool { return s == "line 4\n" }},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := m.Logs(context.Background(), "alice", "old-run", tt.follow, tt.tail, &out, func() {}); err != nil || !tt.want(out.String()) {
				t.Errorf("got %q, %v", out.String(), err)
			}
		})
	}
	if err := m.Delete(context.Background(), "alice", "old-run"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.legacyLogPath(id)); !os.IsNotExist(err) {
		t.Errorf("the log is still there after delete: %v", err)
	}
}
