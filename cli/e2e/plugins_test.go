package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPlugin builds a first-party provider once per test binary.
func buildPlugin(t *testing.T, name string) (path, sum string) {
	t.Helper()
	path = filepath.Join(filepath.Dir(hushBin), "hush-provider-"+name)
	if _, err := os.Stat(path); err != nil {
		out, err := exec.Command("go", "build", "-o", path, "github.com/hush-sh/hush/plugins/"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("build plugin %s: %v\n%s", name, err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return path, hex.EncodeToString(h[:])
}

// filePlugin returns the agent config block of the file provider, built
// once per test binary, serving the values in dir to alice.
func filePlugin(t *testing.T, dir string) string {
	t.Helper()
	path, sum := buildPlugin(t, "file")
	return fmt.Sprintf(`plugin "file" {
  path   = %q
  sha256 = %q
  config { dir = %q }
  allow {
    users = ["alice"]
    refs  = ["*"]
  }
}
`, path, sum, dir)
}

// fakeVault answers the KV v2 read that the vault provider makes, as
// Vault documents it.
func fakeVault(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != "vault-test-token" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors":["permission denied"]}`)
			return
		}
		if r.URL.Path == "/v1/secret/data/db" {
			fmt.Fprint(w, `{"data":{"data":{"password":"from-vault"},"metadata":{"version":1}}}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":[]}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProviderReferences(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	values := filepath.Join(dir, "values")
	os.Mkdir(values, 0o700)
	writeFile(t, values, "db_password", "from-file")
	writeFile(t, values, "api_key", "from-exec")
	vault := fakeVault(t)

	filePath, fileSum := buildPlugin(t, "file")
	execPath, execSum := buildPlugin(t, "exec")
	vaultPath, vaultSum := buildPlugin(t, "vault")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf(`state_dir = %q
plugin "file" {
  path   = %q
  sha256 = %q
  config { dir = %q }
  allow {
    users = ["alice"]
    refs  = ["*"]
  }
}
plugin "exec" {
  path   = %q
  sha256 = %q
  config {
    command             = ["/bin/cat", "%s/{{ref}}"]
    not_found_exit_codes = [1]
  }
  allow {
    users = ["alice"]
    refs  = ["*"]
  }
}
plugin "vault" {
  path   = %q
  sha256 = %q
  config {
    address = %q
    token   = "vault-test-token"
  }
  allow {
    users = ["alice"]
    refs  = ["secret/*"]
  }
}
`, filepath.Join(dir, "state"), filePath, fileSum, values, execPath, execSum, values, vaultPath, vaultSum, vault.URL))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	user := a.newUser("alice")

	plugins := a.mustHush(user, "", "get", "plugins").stdout
	for _, name := range []string{"exec", "file", "vault"} {
		if !strings.Contains(plugins, name) || strings.Count(plugins, "running") != 3 {
			t.Errorf("get plugins:\n%s", plugins)
		}
	}

	a.mustHush(user, "", "create", "secret", "env", "FILE_SECRET", "--from", "file:db_password")
	a.mustHush(user, "", "create", "secret", "env", "EXEC_SECRET", "--from", "exec:api_key")
	a.mustHush(user, "", "create", "secret", "env", "VAULT_SECRET", "--from", "vault:secret/data/db#password")
	table := a.mustHush(user, "", "get", "secrets").stdout
	if !strings.Contains(table, "vault:secret/data/db#password") || !strings.Contains(table, "file:db_password") {
		t.Errorf("SOURCE column:\n%s", table)
	}
	r := a.mustHush(user, "", "run", "-f", writeSpec(t, "refs", "x", `echo "$FILE_SECRET $EXEC_SECRET $VAULT_SECRET"`))
	if !strings.Contains(r.stdout, "from-file from-exec from-vault\n") {
		t.Errorf("run with references:\n%s", r)
	}

	a.mustHush(user, "", "create", "secret", "env", "GONE", "--from", "vault:secret/data/nope#password")
	r = a.hush(user, "", "run", "-f", writeSpec(t, "broken", "x", "true"))
	if r.code != 1 || !strings.Contains(r.stderr, "resolve secret gone from vault:secret/data/nope#password: not found in provider vault") {
		t.Errorf("run with a missing reference: %s", r)
	}
	a.mustHush(user, "", "delete", "secret", "gone", "-y")

	// A provider the agent does not have is refused at create, naming
	// those it has, unless --no-check says the plugin comes later.
	r = a.hush(user, "", "create", "secret", "env", "LATER", "--from", "aws:db/password")
	if r.code != 1 || !strings.Contains(r.stderr, `this agent has no provider plugin named "aws" (it has exec, file, vault`) {
		t.Errorf("create --from an unknown provider: %s", r)
	}
	a.mustHush(user, "", "create", "secret", "env", "LATER", "--from", "aws:db/password", "--no-check")
	if table := a.mustHush(user, "", "get", "secrets").stdout; !strings.Contains(table, "aws:db/password") {
		t.Errorf("the --no-check reference was not stored:\n%s", table)
	}
	a.mustHush(user, "", "delete", "secret", "later", "-y")

	// A reference its provider says is malformed is refused too.
	r = a.hush(user, "", "create", "secret", "env", "MALFORMED", "--from", "vault:secret/data/db")
	if r.code != 1 || !strings.Contains(r.stderr, `provider vault says the reference "secret/data/db" is malformed: reference must be PATH#KEY`) {
		t.Errorf("create --from a malformed reference: %s", r)
	}

	// A plugin killed with SIGKILL is restarted, and the next run resolves.
	pids := pluginPIDs(t, a.cmd.Process.Pid)
	if len(pids) != 3 {
		t.Fatalf("got plugin processes %v, want 3", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	r = a.mustHush(user, "", "run", "-f", writeSpec(t, "again", "x", `echo "$FILE_SECRET $EXEC_SECRET $VAULT_SECRET"`))
	if !strings.Contains(r.stdout, "from-file from-exec from-vault\n") {
		t.Errorf("run after a plugin was killed:\n%s", r)
	}

	// Values never reach the data dir or the agent's log.
	a.stop()
	for _, v := range []string{"from-file", "from-exec", "from-vault"} {
		if hits := grepTree(t, a.dataDir, []byte(v)); len(hits) > 0 {
			t.Errorf("%s is in plaintext in %v", v, hits)
		}
		if strings.Contains(a.stderr.String(), v) {
			t.Errorf("%s is in the agent's log", v)
		}
	}
}

// TestProviderReferenceRules: a plugin's allow blocks say which references
// each user may name, at create and again when a run resolves them.
func TestProviderReferenceRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	values := filepath.Join(dir, "values")
	for _, user := range []string{"alice", "bob"} {
		os.MkdirAll(filepath.Join(values, user), 0o700)
		writeFile(t, filepath.Join(values, user), "db", "canary-db-of-"+user)
	}
	filePath, fileSum := buildPlugin(t, "file")
	config := func(allow string) string {
		return writeFile(t, dir, "agent.hcl", fmt.Sprintf(`state_dir = %q
plugin "file" {
  path   = %q
  sha256 = %q
  config { dir = %q }
  %s
}
`, filepath.Join(dir, "state"), filePath, fileSum, values, allow))
	}
	cfg := config(`allow {
    users = ["*"]
    refs  = ["${user}/*"]
  }`)
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	alice, bob := a.newUser("alice"), a.newUser("bob")

	for _, ref := range []string{"file:alice/db", "file:bob/../alice/db"} {
		r := a.hush(bob, "", "create", "secret", "env", "STOLEN", "--from", ref)
		if r.code != 1 || !strings.Contains(r.stderr, "reference not allowed") {
			t.Errorf("bob creating --from %s: %s", ref, r)
		}
	}
	if ids := a.secretIDs(bob); len(ids) != 0 {
		t.Errorf("bob's secrets after refused creates: %v", ids)
	}
	a.mustHush(bob, "", "create", "secret", "env", "DB", "--from", "file:bob/db")
	a.mustHush(alice, "", "create", "secret", "env", "DB", "--from", "file:alice/db")
	// Management tokens may name any reference.
	a.mustHush(a.token, "", "create", "secret", "env", "DB", "--from", "file:alice/db")
	for user, token := range map[string]string{"bob": bob, "alice": alice} {
		r := a.mustHush(token, "", "run", "-f", writeSpec(t, "show-"+user, "x", `echo "db=$DB"`))
		if !strings.Contains(r.stdout, "db=canary-db-of-"+user+"\n") {
			t.Errorf("%s's run: %s", user, r)
		}
	}
	r := a.mustHush(a.token, "", "run", "-f", writeSpec(t, "show-root", "x", `echo "db=$DB"`))
	if !strings.Contains(r.stdout, "db=canary-db-of-alice\n") {
		t.Errorf("a run of the management token: %s", r)
	}

	// Rules are checked again when a run resolves: with bob no longer
	// allowed, his stored reference fails his run, naming the secret.
	a.stop()
	a = startAgent(t, a.dataDir, "-config", config(`allow {
    users = ["alice"]
    refs  = ["${user}/*"]
  }`))
	r = a.hush(bob, "", "run", "-f", writeSpec(t, "after", "x", `echo "db=$DB"`))
	if r.code != 1 || !strings.Contains(r.stderr, "resolve secret db from file:bob/db: reference not allowed: provider file allows user bob no references") {
		t.Errorf("bob's run after the rules changed: %s", r)
	}
	if strings.Contains(r.stdout, "canary-db-of") {
		t.Errorf("bob's run printed a value: %s", r)
	}

	// Without allow blocks a plugin is for management tokens only.
	a.stop()
	a = startAgent(t, a.dataDir, "-config", config(""))
	r = a.hush(alice, "", "create", "secret", "env", "OTHER", "--from", "file:alice/db")
	if r.code != 1 || !strings.Contains(r.stderr, "provider file is for management tokens only") {
		t.Errorf("create without allow rules: %s", r)
	}
}

// pluginPIDs lists the children of the agent that are provider plugins.
func pluginPIDs(t *testing.T, agentPID int) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name: state, ppid, ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if len(f) > 1 && f[1] == strconv.Itoa(agentPID) && strings.Contains(string(cmdline), "hush-provider-") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestAgentKilledLeavesNoPlugins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	filePath, fileSum := buildPlugin(t, "file")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf(`state_dir = %q
plugin "file" {
  path   = %q
  sha256 = %q
  config { dir = %q }
}
`, filepath.Join(dir, "state"), filePath, fileSum, dir))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	pids := pluginPIDs(t, a.cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("got plugin processes %v, want 1", pids)
	}
	a.cmd.Process.Kill()
	<-a.exited
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pids[0], 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(pids[0], 0) == nil {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids[0]))
		if !strings.Contains(string(stat), ") Z ") {
			t.Errorf("plugin %d outlived the agent killed with SIGKILL", pids[0])
		}
	}
}

// SIGHUP reloads the plugin blocks: a changed config reaches the next run,
// a run that started before it keeps its value, and a config that does not
// load leaves the plugins as they were.
func TestPluginsReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, v := range []string{"before", "after"} {
		os.Mkdir(filepath.Join(dir, v), 0o700)
		writeFile(t, filepath.Join(dir, v), "db_password", "value-"+v+"-reload")
	}
	block := func(values string) string {
		return fmt.Sprintf("state_dir = %q\n", filepath.Join(dir, "state")) + filePlugin(t, filepath.Join(dir, values))
	}
	cfg := writeFile(t, dir, "agent.hcl", block("before"))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	alice := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "env", "DB_PASSWORD", "--from", "file:db_password")
	if r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "first", "x", `echo "[$DB_PASSWORD]"`)); !strings.Contains(r.stdout, "[value-before-reload]") {
		t.Fatalf("run before the reload: %s", r)
	}
	// A run that started before the reload keeps the value it was given.
	a.mustHush(alice, "", "run", "-f", writeSpec(t, "long", "x", `sleep 3; echo "[$DB_PASSWORD]"`), "--no-follow")

	writeFile(t, dir, "agent.hcl", block("after"))
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload logged", 10*time.Second, func() bool {
		return strings.Contains(a.stderr.String(), "reloaded the plugin blocks")
	})
	if r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "second", "x", `echo "[$DB_PASSWORD]"`)); !strings.Contains(r.stdout, "[value-after-reload]") {
		t.Errorf("run after the reload: %s", r)
	}
	waitFor(t, "long ended", 20*time.Second, func() bool {
		return strings.Contains(a.mustHush(alice, "", "logs", "long").stdout, "]")
	})
	if out := a.mustHush(alice, "", "logs", "long").stdout; !strings.Contains(out, "[value-before-reload]") {
		t.Errorf("the run that started before the reload: %q, want the value it was given", out)
	}

	// A config that does not load changes nothing.
	writeFile(t, dir, "agent.hcl", block("after")+"plugin \"broken\" {\n")
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the failed reload logged", 10*time.Second, func() bool {
		return strings.Contains(a.stderr.String(), "the configuration does not load, so the plugins stay as they are")
	})
	if r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "third", "x", `echo "[$DB_PASSWORD]"`)); !strings.Contains(r.stdout, "[value-after-reload]") {
		t.Errorf("run after a failed reload: %s", r)
	}
}

// TestNodeProviderUnderAgent runs the Node.js example provider as a real
// agent launches its plugins: checksum, handshake, AutoMTLS, configure and
// resolve, for a run that prints the value.
func TestNodeProviderUnderAgent(t *testing.T) {
	t.Parallel()
	mainJS, err := filepath.Abs("../../examples/provider-node/main.js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(mainJS), "node_modules")); err != nil {
		t.Fatalf("the Node.js provider needs its npm packages: run `npm ci` in examples/provider-node (make test does): %v", err)
	}
	b, err := os.ReadFile(mainJS)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf(`state_dir = %q
plugin "node" {
  path   = %q
  sha256 = %q
  config {
    vars = { DB_PASSWORD = "from-node-provider" }
  }
  allow {
    users = ["alice"]
    refs  = ["*"]
  }
}
`, filepath.Join(dir, "state"), mainJS, hex.EncodeToString(sum[:])))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	alice := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "env", "DB_PASSWORD", "--from", "node:DB_PASSWORD")
	if r := a.mustHush(alice, "", "run", "-f", writeSpec(t, "from-node", "x", `echo "[$DB_PASSWORD]"`)); !strings.Contains(r.stdout, "[from-node-provider]") {
		t.Errorf("run with a value from the Node.js provider: %s", r)
	}
	if out := a.mustHush(alice, "", "get", "plugins").stdout; !strings.Contains(out, "node") || !strings.Contains(out, "running") {
		t.Errorf("get plugins:\n%s", out)
	}
}
