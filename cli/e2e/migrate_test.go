package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// A plain agent's state moves into a cluster of servers through a
// snapshot: its users' tokens and secrets work on every server, and its
// data dir is refused as a server's.
func TestSingleAgentToServers(t *testing.T) {
	c := startServers(t, 3) // sets E2E_CLUSTER_SEAL, the key the old agent shares
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\nseal \"env\" {\n  var = \"E2E_CLUSTER_SEAL\"\n}\n", filepath.Join(dir, "state")))
	old := startAgent(t, data, "-config", cfg)
	alice := old.newUser("alice")
	old.mustHush(alice, "", "create", "secret", "env", "MOVED=moved-canary-83")
	file := filepath.Join(t.TempDir(), "old.snap")
	old.mustHush(old.token, "", "operator", "snapshot", "save", file)
	old.stop()

	if r := c.hush(1, "operator", "snapshot", "restore", file); r.code != 0 {
		t.Fatalf("restore the old agent's snapshot on s2: %s", r)
	}
	for i := range 3 {
		a := c.agents[i]
		r := runHush(t, c.pki.env(a.addr, alice, c.pki.client), "", "run", "-f",
			writeSpec(t, fmt.Sprintf("moved-%d", i), "x", `echo "[$MOVED]"`, "secrets: [moved]"))
		if r.code != 0 || !strings.Contains(r.stdout, "[moved-canary-83]") {
			t.Errorf("alice's run on s%d after the move: %s", i+1, r)
		}
	}

	// A server's data dir makes no token offline: no other server would
	// know it.
	r := runHush(t, nil, "", "operator", "root-token", "regenerate", "-data-dir", c.dirs[0])
	wantContains(t, "root-token regenerate on a server's data dir", r.stderr, "known to this server alone")

	// The old data dir is not a server's. The old agent's config comes
	// last again for its own state dir: s1 holds its own.
	stderr := agentFails(t, "-bind", "127.0.0.1:0", "-data-dir", data, "-config", c.args[0][1], "-config", cfg,
		"-node-name", "old", "-raft-bind", freePort(t))
	wantContains(t, "the old agent's data dir as a server's", stderr, "snapshot restore")
}
