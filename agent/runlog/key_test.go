package runlog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
)

// A rotation seals a log's own key again, and a log from before log keys
// chunk by chunk, in place; both read as before, under the new key.
func TestResealLog(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "data"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr := st.Keyring()
	w, rl := newTestLog(t, kr, 1<<20)
	writeAll(t, w, "first line\n", "second line\n")
	w.Close()

	// A log from before log keys: the same records, sealed under the
	// keyring itself, in segments that say so.
	v2 := filepath.Join(t.TempDir(), "01V2")
	v2w, err := Create(v2, "01V2", kr, 1<<20, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, v2w, "old line\n", "another old line\n")
	v2w.Close()
	seg := segPath(v2, 0)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, segMagicV2)
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	logs := map[string]struct {
		dir, id, want string
	}{
		"own key":         {rl.dir, rl.id, "first line\nsecond line\n"},
		"before log keys": {v2, "01V2", "old line\nanother old line\n"},
	}
	for name, l := range logs {
		if done, err := Reseal(l.dir, l.id, kr); err != nil || done {
			t.Fatalf("%s: reseal under the key that sealed it: got %v, %v; want nothing done", name, done, err)
		}
	}
	if _, err := st.RotateKeyring(); err != nil {
		t.Fatal(err)
	}
	for name, l := range logs {
		t.Run(name, func(t *testing.T) {
			if done, err := Reseal(l.dir, l.id, kr); err != nil || !done {
				t.Fatalf("reseal: got %v, %v; want it done", done, err)
			}
			if keys, err := KeysUsed(l.dir, l.id); err != nil || !slices.Equal(keys, []uint32{2}) {
				t.Errorf("got keys %v, %v; want [2]", keys, err)
			}
			var out bytes.Buffer
			if err := NewLog(l.dir, l.id, kr, 1<<20).Copy(context.Background(), nil, false, -1, &out, func() {}); err != nil {
				t.Fatal(err)
			}
			if out.String() != l.want {
				t.Errorf("got log %q, want %q", out.String(), l.want)
			}
		})
	}
}
