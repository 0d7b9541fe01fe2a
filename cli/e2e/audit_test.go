package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAuditLog writes an agent's audit log on a small tmpfs of its own:
// every operation has its lines, no token and no value is in it, `hush
// audit hash` finds a token's lines, and while the log cannot be written
// (the tmpfs is full) requests are refused and the health check says so.
func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	auditDir := filepath.Join(dir, "audit")
	os.Mkdir(auditDir, 0o700)
	if err := syscall.Mount("tmpfs", auditDir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount a tmpfs for the audit log (this test needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(auditDir, syscall.MNT_DETACH) })
	path := filepath.Join(auditDir, "audit.log")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\naudit {\n  path = %q\n}\n", filepath.Join(dir, "state"), path))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	alice := a.newUser("alice")
	const canary = "audit-canary-value-7731"
	a.mustHush(alice, "", "create", "secret", "env", "CANARY="+canary)
	a.mustHush(alice, "", "get", "secrets")
	if code, _ := a.request("GET", "/v1/secrets/canary/export", alice, ""); code != 200 {
		t.Fatalf("export: %d", code)
	}
	a.mustHush(alice, "", "run", "-f", writeSpec(t, "audited", "busybox", "echo $CANARY"))
	a.mustHush(alice, "", "delete", "secret", "canary", "-y")
	a.mustHush(a.token, "", "acl", "token", "list")

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for what, needle := range map[string]string{"the secret's value": canary, "alice's token": alice, "the root token": a.token} {
		if strings.Contains(string(b), needle) {
			t.Errorf("the audit log holds %s in clear", what)
		}
	}
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("a line of the audit log is not JSON: %q", sc.Text())
		}
		entries = append(entries, e)
	}
	has := func(typ, op, secret string) bool {
		return slices.ContainsFunc(entries, func(e map[string]any) bool {
			return e["type"] == typ && (op == "" || e["operation"] == op) &&
				(secret == "" || strings.Contains(fmt.Sprint(e["secrets"]), secret)) && e["node"] != nil
		})
	}
	for _, want := range [][3]string{
		{"request", "POST /v1/acl/tokens", ""},
		{"response", "POST /v1/secrets", "canary"},
		{"response", "GET /v1/secrets", ""},
		{"response", "GET /v1/secrets/{name}/export", "canary"},
		{"response", "POST /v1/runs", ""},
		{"run", "", "canary"},
		{"response", "DELETE /v1/secrets/{name}", "canary"},
		{"response", "GET /v1/acl/tokens", ""},
	} {
		if !has(want[0], want[1], want[2]) {
			t.Errorf("no %s line for %q naming %q", want[0], want[1], want[2])
		}
	}
	hash := strings.TrimSpace(a.mustHush(a.token, "", "audit", "hash", alice).stdout)
	if !strings.HasPrefix(hash, "hmac-sha256:") || !strings.Contains(string(b), hash) {
		t.Errorf("hush audit hash of alice's token: %q is not in the log", hash)
	}
	// A token sent with extra white space, which still authenticates, is
	// hashed as it was looked up: its requests are found by the same hash.
	if code, _ := a.request("GET", "/v1/secrets", "  "+alice+" ", ""); code != 200 {
		t.Fatalf("a token with white space around it: %d", code)
	}
	if after, _ := os.ReadFile(path); strings.Count(string(after), hash) < strings.Count(string(b), hash)+2 {
		t.Error("the request with white space around the token is not under its hash")
	}

	// Fill the audit log's file system: the agent refuses requests rather
	// than serve them unrecorded, and says so.
	filler := filepath.Join(auditDir, "filler")
	os.WriteFile(filler, make([]byte, 512<<10), 0o600) // fails part way: the tmpfs is full
	// The log's last page may still take a few lines.
	var r result
	for range 30 {
		if r = a.hush(alice, "", "get", "secrets"); r.code != 0 {
			break
		}
	}
	if r.code == 0 || !strings.Contains(r.stderr, "audit log cannot be written") {
		t.Errorf("a request while the audit log is full: %s", r)
	}
	if code, body := a.request("GET", "/v1/health", "", ""); code != 503 || !strings.Contains(body, "failing") || strings.Contains(body, auditDir) {
		t.Errorf("health while the audit log is full: got %d %s, want 503 failing, without the log's path (health needs no token)", code, body)
	}
	os.Remove(filler)
	a.mustHush(alice, "", "get", "secrets")
	if code, _ := a.request("GET", "/v1/health", "", ""); code != 200 {
		t.Errorf("health once the audit log is written again: %d", code)
	}

	// As logrotate does: move the log, then SIGHUP; the agent writes a
	// new one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	for range 100 {
		a.mustHush(alice, "", "get", "secrets")
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), `"GET /v1/secrets"`) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("no new audit log after SIGHUP")
}
