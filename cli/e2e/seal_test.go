package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/agent/store"
)

// TestSealedDataDirCopy is issue 13 item 7: with seal "file", a copy of
// the data dir without the seal's key opens nothing and says why, and with
// the key it reads everything; the data dir holds no copy of the key.
func TestSealedDataDirCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	keyPath := filepath.Join(dir, "etc", "seal.key")
	cfg := writeFile(t, dir, "seal.hcl", fmt.Sprintf("seal \"file\" {\n  path = %q\n}\n", keyPath))

	a := startAgent(t, data, "-config", cfg)
	alice := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "env", "SEAL_CANARY=sealed-canary-value-77")
	r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "sealed-run", "x", `echo "[$SEAL_CANARY]"`))
	wantContains(t, "run on a sealed agent", r.stdout, "[sealed-canary-value-77]")
	a.stop()

	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("the seal key file was not created: %v", err)
	}
	if fi.Mode().Perm() != 0o400 {
		t.Errorf("seal key file mode: got %v, want 0400", fi.Mode().Perm())
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if hits := grepTree(t, data, key); len(hits) > 0 {
		t.Errorf("the data dir holds the seal key in %v", hits)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "keyring")); !strings.Contains(string(b), `"seal":"file"`) {
		t.Errorf("the keyring file is not wrapped: %.60s...", b)
	}

	// A backup of the data dir alone, restored elsewhere.
	other := t.TempDir()
	cp := filepath.Join(other, "data")
	if err := os.CopyFS(cp, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(cp, "keyring"), 0o600)
	stderr := agentFails(t, "-bind", "127.0.0.1:0", "-data-dir", cp)
	wantContains(t, "start on a copy without the seal key", stderr,
		`with the "file" seal`, cp+".seal.key does not exist", "restore the key file the keyring was wrapped with")
	if _, err := os.Stat(cp + ".seal.key"); err == nil {
		t.Error("the agent made a new seal key for a keyring wrapped by another")
	}
	res := runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", cp)
	if res.code == 0 || !strings.Contains(res.stderr, "does not exist") {
		t.Errorf("root-token regenerate without the seal: got %s, want a refusal naming the missing key", res)
	}

	res = runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", cp, "-config", cfg)
	if res.code != 0 {
		t.Fatalf("root-token regenerate with the seal: %s", res)
	}
	b := startAgent(t, cp, "-config", cfg)
	r = b.mustHush(alice, "", "run", "-f", writeSpec(t, "from-copy", "x", `echo "[$SEAL_CANARY]"`))
	wantContains(t, "run on the copy with the seal key", r.stdout, "[sealed-canary-value-77]")
}

// TestUpgradeFrom02Seals starts this hush with a seal on a copy of a 0.2
// data dir: its plain keyring is wrapped, said at INFO, and it reads on.
func TestUpgradeFrom02Seals(t *testing.T) {
	t.Parallel()
	data, cfg, alice := copyDataDir(t, "0.2")
	// No seal block: a non-dev agent's default, seal "file" beside the
	// data dir.
	a := startAgent(t, data, "-config", cfg)
	if r := a.mustHush(alice, "", "get", "secrets", "-o", "name"); r.stdout != "m\nsecret-stuff\n" {
		t.Errorf("alice's secrets after wrapping: got %q", r.stdout)
	}
	wantContains(t, "agent log", a.stderr.String(), "wrapped the data dir's plain keyring", `"@level":"info"`, "created the seal key file")
	a.stop()
	if b, _ := os.ReadFile(filepath.Join(data, "keyring")); !strings.Contains(string(b), `"seal":"file"`) {
		t.Errorf("the 0.2 keyring was not wrapped: %.60s...", b)
	}
	if _, err := os.Stat(data + ".seal.key"); err != nil {
		t.Errorf("the default seal key beside the data dir: %v", err)
	}
}

// Under seal "env" (and so under "transit" too) runs' loggers write, as
// they need no keyring, and a keyring rotation writes the keyring wrapped.
func TestEnvSealRunsAndRotates(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_SEAL_KEY", base64.StdEncoding.EncodeToString(key))
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeFile(t, dir, "seal.hcl", "seal \"env\" {\n  var = \"E2E_SEAL_KEY\"\n}\n")
	a := startAgent(t, data, "-config", cfg)
	alice := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "env", "ENV_SEAL_CANARY=env-sealed-canary-31")
	r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "env-sealed-run", "x", `echo "[$ENV_SEAL_CANARY]"`))
	wantContains(t, "run on an env-sealed agent", r.stdout, "[env-sealed-canary-31]")
	a.mustHush(a.token, "", "operator", "keyring", "rotate")
	deadline := time.Now().Add(30 * time.Second)
	for a.keyring()[1].State != "retired" {
		if time.Now().After(deadline) {
			t.Fatalf("key 1 did not retire within 30s: %+v", a.keyring())
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.stop()
	if b, _ := os.ReadFile(filepath.Join(data, "keyring")); !strings.Contains(string(b), `"seal":"env"`) {
		t.Errorf("the rotated keyring file is not wrapped: %.60s...", b)
	}
	b := startAgent(t, data, "-config", cfg)
	wantContains(t, "the run's log after a rotation and a restart", b.mustHush(alice, "", "logs", "env-sealed-run").stdout, "[env-sealed-canary-31]")
}

// A dev agent's data dir has no seal, and `root-token regenerate` without
// a config leaves it so: the dev agent starts on it again.
func TestRegenerateKeepsDevDataDirPlain(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	// No dataDir for the harness: it reads a dev agent's token from its
	// banner.
	a := startAgent(t, "", "-data-dir", data)
	a.stop()
	if kind := store.KeyringSeal(data); kind != "" {
		t.Fatalf("a dev agent wrapped its keyring with a %q seal", kind)
	}
	if r := runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", data); r.code != 0 {
		t.Fatalf("regenerate: %s", r)
	}
	if kind := store.KeyringSeal(data); kind != "" {
		t.Errorf("regenerate wrapped the dev agent's keyring with a %q seal", kind)
	}
	if _, err := os.Stat(data + ".seal.key"); err == nil {
		t.Error("regenerate made a seal key for a dev agent's data dir")
	}
	startAgent(t, "", "-data-dir", data)
}
