package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func canary(kind string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "canary-" + kind + "-" + hex.EncodeToString(b)
}

func privateKey(body string) string {
	return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + body + "\n-----END OPENSSH PRIVATE KEY-----\n"
}

// TestSecretFlow follows the flow through the real CLI with every
// secret type, restarts the agent, and checks that no value reached disk or
// the logs.
func TestSecretFlow(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, dataDir)
	alice := a.newUser("alice")
	files := t.TempDir()

	values := map[string]string{}
	for _, k := range []string{"git-ssh", "ssh", "mounted", "docker", "s3-config", "s3-credentials", "gcp", "oci-config", "oci-key", "databricks"} {
		values[k] = canary(k)
	}
	values["env"] = "super-secret-name"
	values["hf"] = "hf_" + canary("hf")

	steps := []struct {
		args  []string
		stdin string
		label string
		name  string
	}{
		{args: []string{"env", "SECRET_STUFF=" + values["env"]}, label: "environment", name: "secret-stuff"},
		{args: []string{"git-ssh", writeFile(t, files, "my_id_rsa", privateKey(values["git-ssh"]))}, label: "git-ssh", name: "my-id-rsa"},
		// Flags after the positional argument, as people type them.
		{args: []string{"ssh", writeFile(t, files, "id_deploy", privateKey(values["ssh"])), "--mount-path", "/keys/deploy"}, label: "ssh", name: "id-deploy"},
		{args: []string{"mounted", writeFile(t, files, "data.txt", values["mounted"]), "--mount-path", "/etc/app/data.txt"}, label: "mounted", name: "data.txt"},
		{args: []string{"docker", "--username", "me", "--server", "ghcr.io", "--password", "-"}, stdin: values["docker"] + "\n", label: "docker", name: "docker"},
		{args: []string{"s3", "--config-file", writeFile(t, files, "config", values["s3-config"]),
			"--credentials-file", writeFile(t, files, "credentials", values["s3-credentials"]), "--profile", "prod"}, label: "s3", name: "s3"},
		{args: []string{"gcp", "--credentials-file", writeFile(t, files, "key.json", `{"private_key":"`+values["gcp"]+`"}`)}, label: "gcp", name: "gcp"},
		{args: []string{"oci", "--config-file", writeFile(t, files, "oci-config", values["oci-config"]),
			"--key-file", writeFile(t, files, "oci.pem", values["oci-key"]), "--name", "oracle"}, label: "oci", name: "oracle"},
		{args: []string{"databricks", "--host", "https://example.cloud.databricks.com", "--token", values["databricks"]}, label: "databricks", name: "databricks"},
		{args: []string{"hf", "--token", "-"}, stdin: values["hf"], label: "hf", name: "hf"},
	}
	for _, s := range steps {
		r := a.mustHush(alice, s.stdin, append([]string{"create", "secret"}, s.args...)...)
		want := "✔  Created " + s.label + " secret: " + s.name + "\n✔  Synced to all clusters\n"
		if r.stdout != want {
			t.Errorf("create %s: got stdout %q, want %q", s.args[0], r.stdout, want)
		}
	}

	r := a.hush(alice, "", "create", "secret", "env", "SECRET_STUFF=other")
	wantDup := "✗  Secret secret-stuff already exists (the name comes from the key \"SECRET_STUFF\"). Secrets cannot be modified: " +
		"delete it with `hush delete secret secret-stuff` and create it again, or give this one another name with --name NAME.\n"
	if r.code != 1 || r.stderr != wantDup {
		t.Errorf("duplicate: got %s\nwant exit 1 and stderr %q", r, wantDup)
	}
	r = a.hush(alice, "", "create", "secret", "git-ssh", writeFile(t, files, "second", privateKey("x")))
	if r.code != 1 || !strings.Contains(r.stderr, "only one git-ssh secret, and you already have my-id-rsa") {
		t.Errorf("second git-ssh secret: got %s", r)
	}

	wantNames := []string{"data.txt", "databricks", "docker", "gcp", "hf", "id-deploy", "my-id-rsa", "oracle", "s3", "secret-stuff"}
	table := a.mustHush(alice, "", "get", "secrets").stdout
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"NAME", "TYPE", "SOURCE", "CREATED"}) {
		t.Errorf("table header: got %q, want NAME TYPE SOURCE CREATED", got)
	}
	row := regexp.MustCompile(`^(\S+)\s+(\S+)\s+stored\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	var gotNames []string
	for _, l := range lines[1:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("table row %q does not read NAME TYPE SOURCE CREATED", l)
			continue
		}
		gotNames = append(gotNames, m[1])
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Errorf("table names: got %q, want %q", gotNames, wantNames)
	}
	if names := strings.Fields(a.mustHush(alice, "", "get", "secrets", "-o", "name", "--type", "env").stdout); !slices.Equal(names, []string{"secret-stuff"}) {
		t.Errorf("-o name --type env: got %q, want [secret-stuff]", names)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(a.mustHush(alice, "", "get", "secrets", "-o", "json").stdout), &listed); err != nil || len(listed) != len(wantNames) {
		t.Errorf("-o json: got %d secrets (%v), want %d", len(listed), err, len(wantNames))
	}
	if y := a.mustHush(alice, "", "get", "secrets", "-o", "yaml").stdout; !strings.Contains(y, "- id: ") || !strings.Contains(y, "name: secret-stuff") {
		t.Errorf("-o yaml: got %q", y)
	}

	before := a.secretIDs(alice)
	a.stop()
	a = startAgent(t, dataDir)
	if after := a.secretIDs(alice); !maps.Equal(before, after) {
		t.Errorf("after restart: got %v, want %v", after, before)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "root.token")); err != nil {
		t.Errorf("root token file: %v", err)
	}

	r = a.mustHush(alice, "", "delete", "secret", "secret-stuff", "-y")
	if r.stdout != "✔  Deleted secret(s): secret-stuff\n✔  Synced to all clusters\n" {
		t.Errorf("delete: got stdout %q", r.stdout)
	}
	if _, ok := a.secretIDs(alice)["secret-stuff"]; ok {
		t.Error("secret-stuff still listed after delete")
	}
	r = a.mustHush(alice, "", "delete", "secrets", "--all", "-y")
	if !strings.Contains(r.stdout, "✔  Deleted secret(s): data.txt, databricks") {
		t.Errorf("delete --all: got %q", r.stdout)
	}
	if n := len(a.secretIDs(alice)); n != 0 {
		t.Errorf("after delete --all: %d secrets left", n)
	}

	a.stop()
	for kind, v := range values {
		if hits := grepTree(t, dataDir, []byte(v)); len(hits) > 0 {
			t.Errorf("%s value found in plaintext in %v", kind, hits)
		}
		if strings.Contains(a.stderr.String()+a.stdout.String(), v) {
			t.Errorf("%s value found in the agent's output", kind)
		}
	}
}

func TestRootTokenFile(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, dataDir)
	fi, err := os.Stat(filepath.Join(dataDir, "root.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("root.token mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(a.stderr.String(), filepath.Join(dataDir, "root.token")) {
		t.Error("the log does not name the root token file")
	}
	if strings.Contains(a.stderr.String()+a.stdout.String(), a.token) {
		t.Error("the root token appears in the agent's output")
	}
	if self := a.mustHush(a.token, "", "version"); !strings.HasPrefix(self.stdout, "hush ") {
		t.Errorf("version: got %q", self.stdout)
	}
	code, body := a.request("GET", "/v1/agent/self", a.token, "")
	if code != 200 || !strings.Contains(body, `"cluster":"default"`) || !strings.Contains(body, `"user":"root"`) {
		t.Errorf("agent/self: got %d %s", code, body)
	}
	// A second start keeps the token it made on the first.
	a.stop()
	b := startAgent(t, dataDir)
	if b.token != a.token {
		t.Error("the root token changed on restart")
	}
}

func TestDevMode(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "")
	banner := a.stdout.String()
	for _, want := range []string{"export HUSH_ADDR=" + a.addr, "export HUSH_TOKEN=hush_"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	a.mustHush(a.token, "", "create", "secret", "env", "A=b")
	var logLine struct {
		DataDir string `json:"data_dir"`
	}
	for _, l := range strings.Split(a.stderr.String(), "\n") {
		if strings.Contains(l, `"agent started"`) {
			json.Unmarshal([]byte(l), &logLine)
		}
	}
	if _, err := os.Stat(logLine.DataDir); err != nil {
		t.Fatalf("dev data dir %q: %v", logLine.DataDir, err)
	}
	a.stop()
	if _, err := os.Stat(logLine.DataDir); !os.IsNotExist(err) {
		t.Errorf("dev data dir %s still exists after stop (%v)", logLine.DataDir, err)
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "")
	for name, token := range map[string]string{"no token": "", "wrong token": "hush_wrong"} {
		for _, ep := range []string{"/v1/secrets", "/v1/secrets/x", "/v1/agent/self"} {
			if code, body := a.request("GET", ep, token, ""); code != 401 || !strings.Contains(body, `"error":`) {
				t.Errorf("%s, GET %s: got %d %s, want 401 with an error", name, ep, code, body)
			}
		}
	}
	if code, _ := a.request("GET", "/v1/health", "", ""); code != 200 {
		t.Errorf("health without a token: got %d, want 200", code)
	}
	r := a.hush("hush_wrong", "", "get", "secrets")
	if r.code != 1 || !strings.Contains(r.stderr, "token not valid") {
		t.Errorf("CLI with a wrong token: %s", r)
	}
}

func TestUserIsolation(t *testing.T) {
	t.Parallel()
	a := startAgent(t, "")
	alice, bob := a.newUser("alice"), a.newUser("bob")
	a.mustHush(alice, "", "create", "secret", "env", "ALICE_ONLY=a1")

	if ids := a.secretIDs(bob); len(ids) != 0 {
		t.Errorf("bob lists %v, want nothing", ids)
	}
	if out := a.mustHush(bob, "", "get", "secrets", "-o", "name").stdout; out != "" {
		t.Errorf("bob's CLI lists %q, want nothing", out)
	}
	if code, body := a.request("GET", "/v1/secrets/alice-only", bob, ""); code != 404 {
		t.Errorf("bob reads alice's secret: got %d %s, want 404", code, body)
	}
	if code, _ := a.request("DELETE", "/v1/secrets/alice-only", bob, ""); code != 404 {
		t.Errorf("bob deletes alice's secret: got %d, want 404", code)
	}
	if r := a.hush(bob, "", "delete", "secret", "alice-only", "-y"); r.code != 1 {
		t.Errorf("bob's CLI deletes alice's secret: %s", r)
	}
	if r := a.hush(bob, "", "acl", "token", "create", "--user", "alice"); r.code != 1 || !strings.Contains(r.stderr, "management token") {
		t.Errorf("bob creates a token: %s", r)
	}
	// Names are per user: bob may hold his own alice-only.
	a.mustHush(bob, "", "create", "secret", "env", "ALICE_ONLY=b1")
	if _, ok := a.secretIDs(alice)["alice-only"]; !ok {
		t.Error("alice's secret is gone")
	}
}
