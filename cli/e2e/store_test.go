package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// agentFails starts an agent that must exit with an error at start-up, and
// returns what it wrote to stderr.
func agentFails(t *testing.T, args ...string) string {
	t.Helper()
	// A state dir of its own, as every agent of the harness has: the
	// test's own config files, after it, win.
	dir := t.TempDir()
	own := writeFile(t, dir, "state.hcl", fmt.Sprintf("state_dir = %q\n", filepath.Join(dir, "state")))
	cmd := exec.Command(hushBin, append([]string{"agent", "-config", own}, args...)...)
	cmd.Env = cleanEnv()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("agent %s exited 0, want a start-up failure:\n%s", strings.Join(args, " "), errb.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("agent %s started, want a start-up failure:\n%s", strings.Join(args, " "), errb.String())
	}
	return errb.String()
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: want %q in:\n%s", what, w, got)
		}
	}
}

// TestUpgradeFrom01 starts this hush on a copy of a data dir that hush 0.1
// wrote: the old tokens work, the secrets list, export and reach a run,
// and the old run's sealed log reads.
func TestUpgradeFrom01(t *testing.T) {
	t.Parallel()
	data, cfg, alice := copyDataDir(t, "0.1")
	a := startAgent(t, data, "-config", cfg)

	r := a.mustHush(alice, "", "get", "secrets", "-o", "name")
	if want := "db-password\ndocker\nmounted-one\nsecret-stuff\n"; r.stdout != want || r.stderr != "" {
		t.Errorf("alice's secrets: got %s\nwant stdout %q", r, want)
	}
	code, body := a.request("GET", "/v1/secrets/secret-stuff/export", alice, "")
	var exp struct {
		Data map[string][]byte
	}
	if json.Unmarshal([]byte(body), &exp); code != 200 || string(exp.Data["value"]) != "canary-env-value-17" {
		t.Errorf("export secret-stuff: got %d, want 200 with its 0.1 value", code)
	}
	// The listed digest is the digest of the old content.
	code, body = a.request("POST", "/v1/secrets/digest", alice,
		`{"name":"secret-stuff","type":"env","fields":{"key":"SECRET_STUFF"},"data":{"value":"Y2FuYXJ5LWVudi12YWx1ZS0xNw=="}}`)
	var digest struct{ Digest string }
	json.Unmarshal([]byte(body), &digest)
	code2, listed := a.request("GET", "/v1/secrets/secret-stuff", alice, "")
	if code != 200 || code2 != 200 || digest.Digest == "" || !strings.Contains(listed, digest.Digest) {
		t.Errorf("digest %d %s, listed %d %s: want the listed digest to match the content's", code, body, code2, listed)
	}
	r = a.mustHush(alice, "", "run", "-f", writeSpec(t, "after-upgrade", "x", `echo "[$SECRET_STUFF]"; cat "$SECRET_PATH_MOUNTED_ONE"; echo`,
		"secrets: [secret-stuff, mounted-one, docker]"))
	wantContains(t, "run after upgrade", r.stdout, "[canary-env-value-17]\ncanary-mounted-23\n")
	r = a.mustHush(alice, "", "logs", "old-run")
	wantContains(t, "old run's log", r.stdout, "line 0\n", "line 4\n")
	r = a.mustHush(a.token, "", "acl", "token", "create", "--user", "carol", "-q")
	if !strings.HasPrefix(r.stdout, "hush_") {
		t.Errorf("the 0.1 root token cannot create tokens: %s", r)
	}
	// A rotation seals the 0.1 records and log again: with the old key
	// pruned, both still read.
	rotateAndPrune(t, a, data)
	wantContains(t, "old run's log after a rotation", a.mustHush(alice, "", "logs", "old-run").stdout, "line 0\n", "line 4\n")
	code, body = a.request("GET", "/v1/secrets/secret-stuff/export", alice, "")
	if json.Unmarshal([]byte(body), &exp); code != 200 || string(exp.Data["value"]) != "canary-env-value-17" {
		t.Errorf("export secret-stuff after a rotation: got %d, want 200 with its 0.1 value", code)
	}
}

// copyDataDir copies the test data dir of hush version to a temp dir and
// returns it, an agent config with a state dir of its own, and alice's
// token.
func copyDataDir(t *testing.T, version string) (data, cfg, alice string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	if err := os.CopyFS(data, os.DirFS("../../agent/testdata/datadir-"+version)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(data, "keyring"), 0o600)
	// The README names the canaries that a grep of the data dir looks for.
	os.Remove(filepath.Join(data, "README.md"))
	b, err := os.ReadFile(filepath.Join(data, "alice.token"))
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("state_dir = %q\n", filepath.Join(dir, "state"))
	// A sealed data dir comes with its seal's key, which the agent takes
	// only from outside the data dir.
	if err := os.Rename(filepath.Join(data, "seal.key"), filepath.Join(dir, "seal.key")); err == nil {
		os.Chmod(filepath.Join(dir, "seal.key"), 0o400)
		conf += fmt.Sprintf("seal \"file\" {\n  path = %q\n}\n", filepath.Join(dir, "seal.key"))
	}
	cfg = writeFile(t, dir, "agent.hcl", conf)
	return data, cfg, strings.TrimSpace(string(b))
}

// rotateAndPrune rotates a's keyring, waits for key 1 to retire, prunes
// it, and checks that its bytes are gone from the data dir.
func rotateAndPrune(t *testing.T, a *agent, dataDir string) {
	t.Helper()
	old := keyringKeys(t, dataDir)[1]
	a.mustHush(a.token, "", "operator", "keyring", "rotate")
	deadline := time.Now().Add(30 * time.Second)
	for a.keyring()[1].State != "retired" {
		if time.Now().After(deadline) {
			t.Fatalf("key 1 did not retire within 30s of a rotation: %+v", a.keyring())
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.mustHush(a.token, "", "operator", "keyring", "prune")
	if _, ok := keyringKeys(t, dataDir)[1]; ok {
		t.Error("key 1 is still in the keyring after prune")
	}
	for _, needle := range [][]byte{old, []byte(base64.StdEncoding.EncodeToString(old))} {
		if hits := grepTree(t, dataDir, needle); len(hits) > 0 {
			t.Errorf("the pruned key's bytes are still in %v", hits)
		}
	}
}

// TestUpgradeFrom02 starts this hush on a copy of a data dir that the
// release before runs outlived the agent wrote, killed under a run: the
// old tokens work and now list, the secrets reach a run, the ended run's
// log reads, and the run whose workload died with that agent is LOST.
func TestUpgradeFrom02(t *testing.T) {
	t.Parallel()
	data, cfg, alice := copyDataDir(t, "0.2")
	a := startAgent(t, data, "-config", cfg)

	if r := a.mustHush(alice, "", "get", "secrets", "-o", "name"); r.stdout != "m\nsecret-stuff\n" {
		t.Errorf("alice's secrets: got %q", r.stdout)
	}
	r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "after-upgrade", "x", `echo "[$SECRET_STUFF]"; cat "$SECRET_PATH_M"; echo`))
	wantContains(t, "run after upgrade", r.stdout, "[canary-env-value-41]\ncanary-mounted-43\n")
	wantContains(t, "the ended run's log", a.mustHush(alice, "", "logs", "done-run").stdout, "line 0\nline 1\n")
	if st := runStatus(t, a, alice, "left-run"); st["status"] != "LOST" || !strings.Contains(fmt.Sprint(st["error"]), "workload was gone") {
		t.Errorf("the run that was RUNNING when the old agent died: got %v %v, want LOST", st["status"], st["error"])
	}
	if r := a.mustHush(a.token, "", "acl", "token", "list", "-o", "json"); !strings.Contains(r.stdout, `"user": "alice"`) {
		t.Errorf("the old tokens do not list:\n%s", r.stdout)
	}
	// Its logs, sealed chunk by chunk under the keyring, move to a new key.
	rotateAndPrune(t, a, data)
	wantContains(t, "the ended run's log after a rotation", a.mustHush(alice, "", "logs", "done-run").stdout, "line 0\nline 1\n")
}

// TestUpgradeFrom03 starts this hush on a copy of a data dir that the
// release before Raft wrote, killed under a run: it opens as a cluster of
// one server, its secrets reach a run, its logs read, its run whose
// workload is gone is LOST, and it restarts from its Raft log and store.
func TestUpgradeFrom03(t *testing.T) {
	t.Parallel()
	data, cfg, alice := copyDataDir(t, "0.3")
	a := startAgent(t, data, "-config", cfg)
	if r := a.mustHush(alice, "", "get", "secrets", "-o", "name"); r.stdout != "m\nsecret-stuff\n" {
		t.Errorf("alice's secrets: got %q", r.stdout)
	}
	r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "after-upgrade", "x", `echo "[$SECRET_STUFF]"; cat "$SECRET_PATH_M"; echo`))
	wantContains(t, "run after upgrade", r.stdout, "[canary-env-value-53]\ncanary-mounted-59\n")
	wantContains(t, "the ended run's log", a.mustHush(alice, "", "logs", "done-run").stdout, "line 0\nline 1\n")
	if st := runStatus(t, a, alice, "left-run"); st["status"] != "LOST" {
		t.Errorf("the run that was RUNNING when the old agent died: got %v, want LOST", st["status"])
	}
	a.mustHush(alice, "", "create", "secret", "env", "AFTER=after-upgrade-61")
	if r := a.mustHush(a.token, "", "server", "members", "-o", "json"); !strings.Contains(r.stdout, `"leader": true`) {
		t.Errorf("the upgraded agent is not the leader of its cluster of one:\n%s", r.stdout)
	}
	a.stop()
	b := startAgent(t, data, "-config", cfg)
	if r := b.mustHush(alice, "", "get", "secrets", "-o", "name"); r.stdout != "after\nm\nsecret-stuff\n" {
		t.Errorf("alice's secrets after a restart: got %q", r.stdout)
	}
	for _, canary := range []string{"canary-env-value-53", "after-upgrade-61"} {
		if hits := grepTree(t, data, []byte(canary)); len(hits) > 0 {
			t.Errorf("canary %q in clear in %v", canary, hits)
		}
	}
}

// TestUpgradeFrom04 opens a data dir written by the release before issues
// 16 and 17: its secrets, a git-ssh key stored before known_hosts (runs get
// accept-new), an ended run's log, and a run left RUNNING, now LOST; and a
// run of the new release refreshes one of the old secrets.
func TestUpgradeFrom04(t *testing.T) {
	t.Parallel()
	data, cfg, alice := copyDataDir(t, "0.4")
	a := startAgent(t, data, "-config", cfg)
	if r := a.mustHush(alice, "", "get", "secrets", "-o", "name"); r.stdout != "gitkey\nm\nsecret-stuff\n" {
		t.Errorf("alice's secrets: got %q", r.stdout)
	}
	r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "after-upgrade", "x",
		`echo "[$SECRET_STUFF]"; cat "$SECRET_PATH_M"; echo; echo "$GIT_SSH_COMMAND" | grep -o StrictHostKeyChecking=accept-new`,
		"refresh: 1s\non_change: none"))
	wantContains(t, "run after upgrade", r.stdout, "[canary-env-value-71]\ncanary-mounted-73\nStrictHostKeyChecking=accept-new\n")
	wantContains(t, "the ended run's log", a.mustHush(alice, "", "logs", "done-run").stdout, "line 0\nline 1\n")
	if st := runStatus(t, a, alice, "left-run"); st["status"] != "LOST" {
		t.Errorf("the run that was RUNNING when the old agent died: got %v, want LOST", st["status"])
	}
	a.stop()
	b := startAgent(t, data, "-config", cfg)
	if r := b.mustHush(alice, "", "get", "secrets", "-o", "name"); r.stdout != "gitkey\nm\nsecret-stuff\n" {
		t.Errorf("alice's secrets after a restart: got %q", r.stdout)
	}
	for _, canary := range []string{"canary-env-value-71", "canary-mounted-73"} {
		if hits := grepTree(t, data, []byte(canary)); len(hits) > 0 {
			t.Errorf("canary %q in clear in %v", canary, hits)
		}
	}
}

// TestMissingKeyringRefusesStart is issue 10 item 6: an agent whose store
// holds sealed records does not start without the keyring that sealed
// them, and starts again once it is back.
func TestMissingKeyringRefusesStart(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, data)
	alice := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "env", "KEEP=kept-value")
	a.stop()
	keyring := filepath.Join(data, "keyring")
	if err := os.Rename(keyring, keyring+".away"); err != nil {
		t.Fatal(err)
	}
	stderr := agentFails(t, "-bind", "127.0.0.1:0", "-data-dir", data)
	wantContains(t, "start without keyring", stderr, keyring, "is missing", "restore the keyring from a backup")
	if _, err := os.Stat(keyring); err == nil {
		t.Error("the agent wrote a new keyring")
	}
	os.Rename(keyring+".away", keyring)
	b := startAgent(t, data)
	if ids := b.secretIDs(alice); ids["keep"] == "" {
		t.Errorf("with the keyring back: got secrets %v, want keep", ids)
	}
}

// TestTruncatedStoreRefusesStart is issue 10 item 7: `: > hush.db` does
// not start as an empty store.
func TestTruncatedStoreRefusesStart(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, data)
	a.mustHush(a.newUser("alice"), "", "create", "secret", "env", "KEEP=kept-value")
	a.stop()
	db := filepath.Join(data, "hush.db")
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	stderr := agentFails(t, "-bind", "127.0.0.1:0", "-data-dir", data)
	wantContains(t, "start with an empty hush.db", stderr, db, "is empty (0 bytes)", "restore the data dir", "from a backup or a snapshot")
}

// TestRootTokenNeverLost is issue 10 item 8: when root.token cannot be
// written, no token is stored, so the next start writes it; and
// `hush operator root-token regenerate` mints a new one offline.
func TestRootTokenNeverLost(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(data, "root.token")
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	stderr := agentFails(t, "-bind", "127.0.0.1:0", "-data-dir", data)
	wantContains(t, "root.token is a directory", stderr, path)
	os.Remove(path)
	a := startAgent(t, data) // reads root.token, or fails
	a.newUser("alice")

	r := runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", data)
	if r.code != 1 || !strings.Contains(r.stderr, "stop the agent first") {
		t.Errorf("regenerate with the agent running: got %s\nwant exit 1 saying to stop the agent first", r)
	}
	a.stop()
	old := a.token
	r = runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", data)
	if r.code != 0 || !strings.Contains(r.stdout, "Wrote a new root token to "+path) {
		t.Fatalf("regenerate: got %s", r)
	}
	b := startAgent(t, data)
	if b.token == old || strings.Contains(r.stdout+r.stderr, b.token) {
		t.Errorf("regenerate printed the token or kept the old one: %s", r)
	}
	b.newUser("bob")
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("root.token mode %#o, want 0600", fi.Mode().Perm())
	}
	r = runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", filepath.Join(t.TempDir(), "nothing"))
	if r.code != 1 || !strings.Contains(r.stderr, "holds no agent store") {
		t.Errorf("regenerate in an empty dir: got %s", r)
	}
}

// TestBindFailsFirst is issue 10 item 9: an agent whose address is taken
// creates nothing.
func TestBindFailsFirst(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	stderr := agentFails(t, "-bind", ln.Addr().String(), "-data-dir", data)
	wantContains(t, "start on a taken port", stderr, "listen on "+ln.Addr().String())
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data dir was created though the agent could not bind: %v", err)
	}
}

// TestUnreadableSecretCLI is issue 10 item 6 through the CLI: a secret the
// agent cannot read is warned of with how to delete it, does not hide the
// others, and is deleted by its owner or with a management token.
func TestUnreadableSecretCLI(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, data)
	alice := a.newUser("alice")
	for _, kv := range []string{"GOOD=good-value", "BAD=bad-value", "WORSE=worse-value"} {
		a.mustHush(alice, "", "create", "secret", "env", kv)
	}
	ids := a.secretIDs(alice)
	a.stop()
	db, err := bolt.Open(filepath.Join(data, "hush.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("secrets")).Bucket([]byte("alice"))
		for _, n := range []string{"bad", "worse"} {
			v := bytes.Clone(b.Get([]byte(n)))
			v[len(v)-1] ^= 1
			b.Put([]byte(n), v)
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, data)

	r := a.mustHush(alice, "", "get", "secrets", "-o", "name")
	if r.stdout != "good\n" {
		t.Errorf("listing: got stdout %q, want good alone", r.stdout)
	}
	wantContains(t, "listing's warnings", r.stderr,
		"!  Secret bad (id "+ids["bad"]+") cannot be read by the agent", "delete it with `hush delete secret bad`",
		"!  Secret worse (id "+ids["worse"]+")")
	a.mustHush(alice, "", "delete", "secret", "bad", "-y")
	r = a.hush(a.newUser("bob"), "", "delete", "secret", "worse", "--user", "alice", "-y")
	if r.code != 1 || !strings.Contains(r.stderr, "management token") {
		t.Errorf("delete --user with another user's token: got %s, want a failure asking for a management token", r)
	}
	r = a.mustHush(a.token, "", "delete", "secret", "worse", "--user", "alice", "-y")
	wantContains(t, "delete --user", r.stdout, "Deleted secret(s) of user alice: worse")
	r = a.mustHush(alice, "", "get", "secrets", "-o", "name")
	if r.stdout != "good\n" || r.stderr != "" {
		t.Errorf("after the deletes: got %s, want good alone and no warning", r)
	}
	code, body := a.request("GET", "/v1/tombstones", alice, "")
	if code != 200 || !strings.Contains(body, ids["bad"]) || !strings.Contains(body, ids["worse"]) {
		t.Errorf("tombstones: got %d %s, want bad's and worse's ids", code, body)
	}
}

// TestSyncLeavesUnreadableSecrets: a cluster that holds a secret it cannot
// read still holds it: sync says so and copies nothing over it, and the
// other clusters keep theirs.
func TestSyncLeavesUnreadableSecrets(t *testing.T) {
	t.Parallel()
	f := startFleet(t, "a", "b")
	f.mustHush("", "create", "secret", "env", "SHARED=shared-value-53")
	id := f.sameEverywhere("shared")
	data := f.agents["b"].dataDir
	f.agents["b"].stop()
	db, err := bolt.Open(filepath.Join(data, "hush.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("secrets")).Bucket([]byte("alice"))
		v := bytes.Clone(b.Get([]byte("shared")))
		v[len(v)-1] ^= 1
		return b.Put([]byte("shared"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.restart("b")

	r := f.hush("", "sync", "secrets")
	wantContains(t, "sync", r.stdout+r.stderr, "cluster b cannot read secret(s) shared: they are left as they are there")
	if strings.Contains(r.stdout+r.stderr, "already exists") {
		t.Errorf("sync tried to copy over the unreadable secret:\n%s", r)
	}
	if got := f.ids("a")["shared"]; got != id {
		t.Errorf("cluster a holds shared as %q after sync, want %s", got, id)
	}
	code, body := f.agents["b"].request("GET", "/v1/secrets", f.tokens["b"], "")
	if code != 200 || !strings.Contains(body, `"unreadable":[{"name":"shared","id":"`+id+`"`) {
		t.Errorf("cluster b lists %d %s, want shared as unreadable, left as it was", code, body)
	}
	f.noValues("shared-value-53")
}

// TestAcknowledgedCreatesSurviveSIGKILL: creates that share commits are
// answered only once durable: every one acknowledged before the agent is
// killed is there after it restarts.
func TestAcknowledgedCreatesSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, data)
	alice := a.newUser("alice")
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("s-%d-%d", c, i)
				req, _ := http.NewRequest("POST", a.addr+"/v1/secrets", strings.NewReader(
					`{"name":"`+name+`","type":"env","fields":{"key":"K"},"data":{"value":"dmFsdWU="}}`))
				req.Header.Set("Authorization", "Bearer "+alice)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the agent is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill it while creates are in flight.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	a.cmd.Process.Kill()
	<-a.exited
	wg.Wait()

	b := startAgent(t, data)
	ids := b.secretIDs(alice)
	var lost []string
	for _, name := range acked {
		if ids[name] == "" {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged creates are gone after SIGKILL: %v", len(lost), len(acked), lost)
	}
	if len(acked) < 300 {
		t.Errorf("only %d creates were acknowledged", len(acked))
	}
}

// Two agents on one state dir would each remove the other's run tmpfs as
// leftovers of its own: the second refuses to start, and names the first.
func TestStateDirTakenRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\n", state))
	first := filepath.Join(dir, "first")
	a := startAgent(t, first, "-config", cfg)
	stderr := agentFails(t, "-bind", "127.0.0.1:0", "-data-dir", filepath.Join(dir, "second"), "-config", cfg)
	wantContains(t, "second agent on the state dir", stderr,
		"state dir "+state+" is in use by the agent with pid", "data dir "+first, "a state_dir of its own")
	a.stop()
	startAgent(t, filepath.Join(dir, "second"), "-config", cfg)
}
