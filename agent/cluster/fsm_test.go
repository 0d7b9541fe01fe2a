package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testFSM is a key-value FSM that persists itself to a file after every
// command, as the agent's store does. A command is "set KEY VALUE" or
// "del KEY"; the result is "ok" or "error: ...".
type testFSM struct {
	path string

	mu       sync.Mutex
	state    fsmState
	applies  int // commands applied, replays not counted
	replays  int // commands skipped as already applied
	restores int
}

type fsmState struct {
	Index uint64            `json:"index"`
	KV    map[string]string `json:"kv"`
}

var _ FSM = (*testFSM)(nil)

func newTestFSM(t testing.TB, dir string) *testFSM {
	t.Helper()
	f := &testFSM{path: filepath.Join(dir, "fsm.json"), state: fsmState{KV: map[string]string{}}}
	b, err := os.ReadFile(f.path)
	if err == nil {
		if err := json.Unmarshal(b, &f.state); err != nil {
			t.Fatal(err)
		}
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return f
}

func (f *testFSM) Apply(idx uint64, cmd []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx <= f.state.Index {
		f.replays++
		return nil
	}
	f.applies++
	f.state.Index = idx
	var res string
	switch parts := strings.SplitN(string(cmd), " ", 3); {
	case len(parts) == 3 && parts[0] == "set":
		f.state.KV[parts[1]] = parts[2]
		res = "ok"
	case len(parts) == 2 && parts[0] == "del":
		if _, ok := f.state.KV[parts[1]]; !ok {
			res = "error: no such key " + parts[1]
			break
		}
		delete(f.state.KV, parts[1])
		res = "ok"
	default:
		res = fmt.Sprintf("error: bad command %q", cmd)
	}
	f.saveLocked()
	return []byte(res)
}

func (f *testFSM) saveLocked() {
	b, _ := json.Marshal(f.state)
	if err := os.WriteFile(f.path, b, 0o600); err != nil {
		panic(err)
	}
}

func (f *testFSM) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Index
}

func (f *testFSM) ForgetAppliedIndex() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.Index = 0
	f.saveLocked()
	return nil
}

func (f *testFSM) Snapshot(w io.Writer) error {
	f.mu.Lock()
	b, err := json.Marshal(f.state)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (f *testFSM) Restore(r io.Reader) error {
	var s fsmState
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
	f.restores++
	f.saveLocked()
	return nil
}

func (f *testFSM) get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.state.KV[k]
	return v, ok
}

func (f *testFSM) counts() (applies, replays, restores int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies, f.replays, f.restores
}

func (f *testFSM) kv() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]string, len(f.state.KV))
	for k, v := range f.state.KV {
		m[k] = v
	}
	return m
}
