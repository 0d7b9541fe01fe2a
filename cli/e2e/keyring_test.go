package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/seal"
)

// keyringKeys reads the keys of the keyring file in dataDir, by id,
// unwrapping it with the default seal's key file beside the data dir.
func keyringKeys(t *testing.T, dataDir string) map[uint32][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "keyring"))
	if err != nil {
		t.Fatal(err)
	}
	var wrapped struct {
		Seal       string
		Ciphertext []byte
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		t.Fatalf("parse keyring: %v", err)
	}
	if wrapped.Seal != "" {
		sl, err := seal.NewFile(dataDir+config.DefaultSealKeySuffix, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		if b, err = sl.Unwrap(context.Background(), wrapped.Ciphertext); err != nil {
			t.Fatalf("unwrap keyring: %v", err)
		}
	}
	var kf struct {
		Keys []struct {
			ID  uint32
			Key []byte
		}
	}
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatalf("parse keyring: %v", err)
	}
	keys := map[uint32][]byte{}
	for _, k := range kf.Keys {
		keys[k.ID] = k.Key
	}
	return keys
}

type keyringKey struct {
	ID      uint32
	State   string
	Records int
}

func (a *agent) keyring() map[uint32]keyringKey {
	a.t.Helper()
	out := a.mustHush(a.token, "", "operator", "keyring", "list", "-o", "json").stdout
	var keys []keyringKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		a.t.Fatalf("parse keyring list %q: %v", out, err)
	}
	m := map[uint32]keyringKey{}
	for _, k := range keys {
		m[k.ID] = k
	}
	return m
}

// A rotation seals a few thousand records and a run's log again under a
// new key while the agent serves; a SIGKILL part way loses nothing, the
// next agent finishes the rotation, and once the old key is pruned its
// bytes are nowhere in the data dir.
func TestKeyringRotation(t *testing.T) {
	const secrets = 1500 // a metadata record and a value record each
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\nkeyring_reseal_rate = 500\nhttp {\n  rate_limit = 0\n}\n", filepath.Join(dir, "state")))
	a := startAgent(t, dataDir, "-config", cfg)

	var wg sync.WaitGroup
	errs := make(chan string, secrets)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < secrets; i += 4 {
				body := fmt.Sprintf(`{"name":"s%d","type":"env","fields":{"key":"S%d"},"data":{"value":%q}}`,
					i, i, base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "rotation-canary-%d", i)))
				if code, resp := a.request("POST", "/v1/secrets", a.token, body); code != 201 {
					errs <- fmt.Sprintf("create s%d: %d %s", i, code, resp)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	spec := writeFile(t, dir, "run.yaml", "name: before\nimage: busybox\nsecrets: [s7]\ncommand: echo the log of a run from before the rotation\n")
	a.mustHush(a.token, "", "run", "-f", spec)

	old := keyringKeys(t, dataDir)[1]
	if len(old) != 32 {
		t.Fatalf("got a %d-byte key 1, want 32 bytes", len(old))
	}
	before := a.keyring()[1].Records
	if before < 2*secrets {
		t.Fatalf("key 1 seals %d records, want at least %d", before, 2*secrets)
	}
	if out := a.mustHush(a.token, "", "operator", "keyring", "rotate").stdout; !strings.Contains(out, "key 2 seals new data") {
		t.Fatalf("rotate said %q, want it to name key 2", out)
	}
	// Kill the agent part way through: some records moved, some not.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := a.keyring()[1].Records
		if left < before-100 && left > 100 {
			t.Logf("killing the agent with %d of %d records left under key 1", left, before)
			break
		}
		if left <= 100 || time.Now().After(deadline) {
			t.Fatalf("key 1 seals %d of %d records: the rotation was not caught part way", left, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited

	a = startAgent(t, dataDir, "-config", cfg)
	deadline = time.Now().Add(60 * time.Second)
	for a.keyring()[1].State != "retired" {
		if time.Now().After(deadline) {
			t.Fatalf("key 1 did not retire within 60s of the restart: %+v\n%s", a.keyring(), a.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := a.keyring()[2]; got.State != "active" || got.Records < before {
		t.Fatalf("got key 2 %+v, want it active and sealing at least %d records", got, before)
	}
	if out := a.mustHush(a.token, "", "operator", "keyring", "prune").stdout; !strings.Contains(out, "Pruned key 1") {
		t.Fatalf("prune said %q, want it to name key 1", out)
	}
	if _, ok := keyringKeys(t, dataDir)[1]; ok {
		t.Fatal("key 1 is still in the keyring file after prune")
	}
	if r := a.hush(a.token, "", "operator", "keyring", "prune"); r.code == 0 || !strings.Contains(r.stderr, "no retired keys") {
		t.Fatalf("a second prune: got %v, want it to fail saying no key is retired", r)
	}

	// Nothing was lost: every secret lists and reads, and the run's log
	// reads.
	if ids := a.secretIDs(a.token); len(ids) != secrets {
		t.Fatalf("got %d secrets after the rotation, want %d", len(ids), secrets)
	}
	for i := 0; i < secrets; i += 97 {
		code, body := a.request("GET", fmt.Sprintf("/v1/secrets/s%d/export", i), a.token, "")
		want := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "rotation-canary-%d", i))
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("export s%d after the rotation: got %d %s", i, code, body)
		}
	}
	if out := a.mustHush(a.token, "", "logs", "before").stdout; !strings.Contains(out, "the log of a run from before the rotation") {
		t.Fatalf("got log %q of the run from before the rotation", out)
	}
	spec = writeFile(t, dir, "after.yaml", "name: after\nimage: busybox\nsecrets: [s7]\ncommand: echo $S7\n")
	if out := a.mustHush(a.token, "", "run", "-f", spec).stdout; !strings.Contains(out, "rotation-canary-7") {
		t.Fatalf("a run after the rotation printed %q, want its secret", out)
	}
	a.stop()
	for _, needle := range [][]byte{old, []byte(base64.StdEncoding.EncodeToString(old))} {
		if hits := grepTree(t, dataDir, needle); len(hits) > 0 {
			t.Errorf("the pruned key's bytes are still in %v", hits)
		}
	}
}
