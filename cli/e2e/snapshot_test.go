package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A snapshot saved on a follower and restored through another server
// takes every server back to it: the secrets created after it are gone,
// the earlier ones read on every server. The file is sealed: an altered
// one, or one that is no snapshot, is refused, and no value is in it.
func TestServersSnapshot(t *testing.T) {
	c := startServers(t, 3)
	if r := c.hush(0, "create", "secret", "env", "EARLY=snap-canary-early"); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	lead := c.leader(0)
	if lead < 0 {
		t.Fatal("no leader")
	}
	follower, other := (lead+1)%3, (lead+2)%3
	file := filepath.Join(t.TempDir(), "cluster.snap")
	r := c.hush(follower, "operator", "snapshot", "save", file)
	if r.code != 0 || !strings.Contains(r.stdout, "Saved a snapshot") {
		t.Fatalf("save on follower s%d: %s", follower+1, r)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("got snapshot file mode %o, want 600", got)
	}
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(saved, []byte("snap-canary-early")) {
		t.Error("the snapshot file holds a secret's value in clear")
	}
	if r := c.hush(lead, "create", "secret", "env", "LATE=snap-canary-late"); r.code != 0 {
		t.Fatalf("create after the save: %s", r)
	}

	refused := map[string]struct {
		content []byte
		want    string
	}{
		"altered":        {content: flipByte(saved, len(saved)/2), want: "altered"},
		"cut short":      {content: saved[:len(saved)-10], want: "cut short"},
		"not a snapshot": {content: []byte("name: x\nimage: y\n"), want: "not a hush snapshot"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.snap")
			if err := os.WriteFile(bad, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			r := c.hush(other, "operator", "snapshot", "restore", bad)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("restore of a file %s: got %s, want a failure saying %q", name, r, tc.want)
			}
		})
	}
	if got := c.names(lead); got != "early\nlate\n" {
		t.Fatalf("after refused restores s%d lists %q, want both secrets", lead+1, got)
	}

	r = c.hush(other, "operator", "snapshot", "restore", file)
	if r.code != 0 || !strings.Contains(r.stdout, "Restored the snapshot") || !strings.Contains(r.stdout, "replaced the cluster's state") ||
		!strings.Contains(r.stdout, "2 secrets") {
		t.Fatalf("restore through s%d: %s", other+1, r)
	}
	for i := range 3 {
		if got := c.names(i); got != "early\n" {
			t.Errorf("s%d lists %q after the restore, want only the secret from before the save", i+1, got)
		}
		spec := writeSpec(t, fmt.Sprintf("after-restore-%d", i), "x", `echo "[$EARLY]"`)
		if r := c.hush(i, "run", "-f", spec); r.code != 0 || !strings.Contains(r.stdout, "[snap-canary-early]") {
			t.Errorf("a run on s%d after the restore: %s", i+1, r)
		}
	}
	// The cluster takes writes after a restore, and forgets nothing of them.
	if r := c.hush(follower, "create", "secret", "env", "LATER=snap-canary-later"); r.code != 0 {
		t.Fatalf("create after the restore: %s", r)
	}
	for i := range 3 {
		c.agents[i].stop()
		for _, canary := range []string{"snap-canary-early", "snap-canary-late", "snap-canary-later"} {
			if hits := grepTree(t, filepath.Dir(c.dirs[i]), []byte(canary)); len(hits) > 0 {
				t.Errorf("canary %q in clear in %v", canary, hits)
			}
		}
	}
}

func flipByte(b []byte, at int) []byte {
	out := bytes.Clone(b)
	out[at] ^= 0x40
	return out
}

// On a plain agent, a cluster of its own, with and without a seal: a
// restore brings back the keyring that sealed the snapshot, after a
// rotation, and the agent reads its secrets after a restart; a user's
// token may neither save nor restore.
func TestSnapshotSingleAgent(t *testing.T) {
	for name, dataDir := range map[string]string{"dev without a seal": "", "data dir with a file seal": "data"} {
		t.Run(name, func(t *testing.T) {
			if dataDir != "" {
				dataDir = filepath.Join(t.TempDir(), dataDir)
			}
			a := startAgent(t, dataDir)
			a.mustHush(a.token, "", "create", "secret", "env", "KEPT=single-canary-kept")
			file := filepath.Join(t.TempDir(), "one.snap")
			user := a.newUser("alice")
			if r := a.hush(user, "", "operator", "snapshot", "save", file); r.code == 0 || !strings.Contains(r.stderr, "management token") {
				t.Errorf("save with a user's token: got %s, want refused", r)
			}
			a.mustHush(a.token, "", "operator", "snapshot", "save", file)
			a.mustHush(a.token, "", "operator", "keyring", "rotate")
			a.mustHush(a.token, "", "create", "secret", "env", "GONE=single-canary-gone")
			if r := a.hush(user, "", "operator", "snapshot", "restore", file); r.code == 0 || !strings.Contains(r.stderr, "management token") {
				t.Errorf("restore with a user's token: got %s, want refused", r)
			}
			a.mustHush(a.token, "", "operator", "snapshot", "restore", file)
			spec := writeSpec(t, "after-restore", "x", `echo "[$KEPT]"`)
			if r := a.mustHush(a.token, "", "get", "secrets", "-o", "name"); r.stdout != "kept\n" {
				t.Errorf("got secrets %q after the restore, want only kept", r.stdout)
			}
			if r := a.hush(a.token, "", "run", "-f", spec); r.code != 0 || !strings.Contains(r.stdout, "[single-canary-kept]") {
				t.Errorf("a run after the restore: %s", r)
			}
			if dataDir == "" {
				return
			}
			a.stop()
			a = startAgent(t, dataDir)
			if r := a.mustHush(a.token, "", "get", "secrets", "-o", "name"); r.stdout != "kept\n" {
				t.Errorf("got secrets %q after a restart, want kept", r.stdout)
			}
		})
	}
}
