package runlog

import (
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
)

// TestResumeContinuesTheLog resumes a log as a restarted workload's logger
// does, once after a clean close and once after a record torn in half, and
// reads one log with nothing marked dropped.
func TestResumeContinuesTheLog(t *testing.T) {
	kr := testKeyring(t)
	w, rl := newTestLog(t, kr, 1<<20)
	writeAll(t, w, "first run\n")
	w.Close()
	raw, err := LoadKey(rl.dir, rl.id, kr)
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.KeyringOf(raw)
	if err != nil {
		t.Fatal(err)
	}

	w2, err := Resume(rl.dir, rl.id, key, 1<<20, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w2, "second run\n")
	w2.Close()
	if got, want := mustRead(t, rl), "first run\nsecond run\n"; got != want {
		t.Fatalf("after one resume: got %q, want %q", got, want)
	}

	// A writer that died in the middle of a record leaves part of it.
	last, _ := LastSegment(rl.dir)
	f, err := os.OpenFile(segPath(rl.dir, last), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0, 9, 1, 2})
	f.Close()
	w3, err := Resume(rl.dir, rl.id, key, 1<<20, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w3, "third run\n")
	w3.Close()
	got := mustRead(t, rl)
	if want := "first run\nsecond run\nthird run\n"; got != want {
		t.Fatalf("after a torn record: got %q, want %q", got, want)
	}
	if next, _ := LastSegment(rl.dir); next != last+1 {
		t.Errorf("the resumed log's newest segment is %d, want %d", next, last+1)
	}

	// Workloads restarted before they print anything leave no trail of
	// empty segments.
	for range 3 {
		w, err := Resume(rl.dir, rl.id, key, 1<<20, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if next, _ := LastSegment(rl.dir); next != last+2 {
		t.Errorf("after three silent restarts the newest segment is %d, want %d", next, last+2)
	}
	w4, err := Resume(rl.dir, rl.id, key, 1<<20, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w4, "fourth run\n")
	w4.Close()
	if got, want := mustRead(t, rl), "first run\nsecond run\nthird run\nfourth run\n"; got != want {
		t.Fatalf("after silent restarts: got %q, want %q", got, want)
	}
}

func mustRead(t *testing.T, rl *Log) string {
	t.Helper()
	out, err := read(t, rl, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("the log marks output dropped: %q", out)
	}
	return out
}
