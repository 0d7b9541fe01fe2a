package runtime

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/store"
)

// testLog returns the log target of a test run and a function that reads
// the log back, once the run's task has been deleted.
func testLog(t *testing.T, id string) (runlog.Target, func() string) {
	t.Helper()
	dir := t.TempDir()
	keyring := filepath.Join(dir, store.KeyringFile)
	kr, err := store.LoadKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	target := runlog.Target{Dir: filepath.Join(dir, id), ID: id, Key: filepath.Join(dir, id+".key"), Limit: 1 << 20}
	key, err := runlog.NewKey(target.Dir, id, kr)
	if err != nil {
		t.Fatal(err)
	}
	if err := runlog.WriteKey(target.Key, key); err != nil {
		t.Fatal(err)
	}
	return target, func() string {
		t.Helper()
		var out bytes.Buffer
		if err := runlog.NewLog(target.Dir, id, kr, target.Limit).Copy(context.Background(), nil, false, -1, &out, func() {}); err != nil {
			t.Errorf("read the log of %s: %v", id, err)
		}
		return out.String()
	}
}
