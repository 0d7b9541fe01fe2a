package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	f := startFleet(t, "a", "b", "c")
	const token, keyValue, extra = "apply-token-value-5e0c", "apply-file-value-c3d9", "apply-extra-value-0b7f"
	dir := t.TempDir()
	writeFile(t, dir, "key.json", keyValue)
	file := writeFile(t, dir, "secrets.hcl", `
secret "env" "app-token" {
  value = env("APP_TOKEN")
}
secret "mounted" "gcp-key" {
  value      = file("key.json")
  mount_path = "/secrets/gcp/key.json"
}
secret "env" "db-password" {
  key  = "DB_PASSWORD"
  from = "vault:secret/data/db#password"
}
`)
	apply := func(args ...string) result {
		t.Helper()
		// The agents have no vault plugin: the file's reference is stored
		// for clusters that will.
		return f.hush("", append([]string{"apply", "-f", file, "--no-check"}, args...)...)
	}
	t.Setenv("APP_TOKEN", token) // the CLI inherits it through cleanEnv

	// A dry run plans a create on every cluster and changes nothing.
	r := apply("--dry-run")
	if r.code != 0 || strings.Count(r.stdout, "+ app-token") != 3 || !strings.Contains(r.stdout, "Dry run") {
		t.Fatalf("apply --dry-run: %s", r)
	}
	for _, n := range f.names {
		if ids := f.ids(n); len(ids) != 0 {
			t.Fatalf("dry run created %v on %s", ids, n)
		}
	}

	// Without --no-check, a reference to a provider the agents have no
	// plugin of is refused, and says how to store it anyway.
	vaultOnly := writeFile(t, t.TempDir(), "vault.hcl", "secret \"env\" \"db-password\" {\n  key  = \"DB_PASSWORD\"\n  from = \"vault:secret/data/db#password\"\n}\n")
	r = f.hush("", "apply", "-f", vaultOnly)
	if r.code != 1 || !strings.Contains(r.stderr, `this agent has no provider plugin named "vault"`) || !strings.Contains(r.stderr, "--no-check") {
		t.Errorf("apply of an unknown provider's reference: %s", r)
	}
	for _, n := range f.names {
		if ids := f.ids(n); len(ids) != 0 {
			t.Fatalf("a refused apply created %v on %s", ids, n)
		}
	}

	r = apply()
	if r.code != 0 || !strings.Contains(r.stdout, "9 created") {
		t.Fatalf("apply: %s", r)
	}
	for _, name := range []string{"app-token", "gcp-key", "db-password"} {
		f.sameEverywhere(name)
	}
	if r = apply(); r.code != 0 || !strings.Contains(r.stdout, "No changes: every cluster matches") {
		t.Errorf("second apply: %s", r)
	}

	// A manual delete on b is drift: listed, planned, and repaired under
	// one id everywhere (b's tombstone forbids the old one).
	f.agents["b"].mustHush(f.tokens["b"], "", "delete", "secret", "gcp-key", "-y")
	if r = f.mustHush("", "get", "secrets"); !strings.Contains(r.stdout, "2/3, missing: b") {
		t.Errorf("get secrets after a manual delete: %s", r)
	}
	r = apply("--dry-run")
	if !strings.Contains(r.stdout, "cluster b:\n    + gcp-key") || !strings.Contains(r.stdout, "~ gcp-key") {
		t.Errorf("apply --dry-run after a manual delete: %s", r)
	}
	if _, ok := f.ids("b")["gcp-key"]; ok {
		t.Fatal("dry run repaired the drift")
	}
	if r = apply(); r.code != 0 {
		t.Fatalf("apply after a manual delete: %s", r)
	}
	f.sameEverywhere("gcp-key")
	if r = apply(); !strings.Contains(r.stdout, "No changes") {
		t.Errorf("apply after repair: %s", r)
	}
	if r = f.mustHush("", "sync", "secrets"); !strings.Contains(r.stdout, "in sync") {
		t.Errorf("sync after apply: %s", r)
	}

	// Changed content is left alone, with a warning, unless --replace.
	t.Setenv("APP_TOKEN", token+"-rotated")
	before := f.sameEverywhere("app-token")
	r = apply()
	if r.code != 1 || !strings.Contains(r.stderr, "secret app-token differs from the file on a, b, c") || !strings.Contains(r.stderr, "--replace") {
		t.Errorf("apply with changed content: %s", r)
	}
	if f.sameEverywhere("app-token") != before {
		t.Fatal("apply replaced a secret without --replace")
	}
	r = apply("--replace")
	if r.code != 0 || strings.Count(r.stdout, "~ app-token") != 3 {
		t.Errorf("apply --replace: %s", r)
	}
	if f.sameEverywhere("app-token") == before {
		t.Error("apply --replace kept the old secret")
	}

	// Undeclared secrets go only with --prune.
	f.mustHush("", "create", "secret", "env", "EXTRA="+extra)
	if r = apply(); !strings.Contains(r.stdout, "No changes") {
		t.Errorf("apply with an undeclared secret: %s", r)
	}
	if r = apply("--prune"); r.code != 0 || strings.Count(r.stdout, "- extra") != 3 {
		t.Errorf("apply --prune: %s", r)
	}
	f.goneEverywhere("extra")

	// A bad file says where, and changes nothing.
	bad := writeFile(t, dir, "bad.hcl", "secret \"env\" \"ok\" {\n  value = env(\"APP_TOKEN\")\n}\nsecret \"nope\" \"x\" {\n}\n")
	r = f.hush("", "apply", "-f", bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":4:") {
		t.Errorf("apply a bad file: want exit 1 and %s:4:...; got %s", bad, r)
	}
	if _, ok := f.ids("a")["ok"]; ok {
		t.Error("a bad file created a secret")
	}

	f.noValues(token, token+"-rotated", keyValue, extra)
}

// TestApplyExamples applies examples/secrets.hcl, and then the YAML one,
// which declares the same set and so changes nothing.
func TestApplyExamples(t *testing.T) {
	f := startFleet(t, "a", "b")
	t.Setenv("SECRET_STUFF", "example-value-e1f0")
	t.Setenv("HF_TOKEN", "hf_example-value-e1f0")
	t.Setenv("DATABRICKS_TOKEN", "dapi-example-value-e1f0")
	for _, tc := range []struct{ name, want string }{
		{"secrets.hcl", "Applied 12 change(s)"},
		{"secrets.yaml", "No changes"},
	} {
		name, want := tc.name, tc.want
		example, err := filepath.Abs(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(example); err != nil {
			t.Fatal(err)
		}
		r := f.hush("", "apply", "-f", example, "--no-check")
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("apply %s: want %q; got %s", name, want, r)
		}
		if name == "secrets.hcl" {
			f.sameEverywhere("gcp-key")
		}
	}
	f.noValues("example-value-e1f0")
}
