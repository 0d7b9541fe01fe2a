package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefreshFromProvider changes values in the file provider while runs
// run on containerd: one run's file gets the new value, replaced whole,
// and its on_change signal; another run is restarted and sees its new env
// value, its log one piece. Events name the secrets only, and no value
// reaches the data dir or containerd's.
func TestRefreshFromProvider(t *testing.T) {
	t.Parallel()
	socket, image := containerdEnv(t)
	dir := t.TempDir()
	values := filepath.Join(dir, "values")
	os.Mkdir(values, 0o700)
	writeFile(t, values, "cfg", "first-refresh-value")
	writeFile(t, values, "token", "old-token-value")
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf(`state_dir = %q
runtime "containerd" {
  address    = %q
  namespace  = "hush"
  stop_grace = "2s"
}
`, filepath.Join(dir, "state"), socket)+filePlugin(t, values))
	a := startAgent(t, filepath.Join(dir, "data"), "-config", cfg)
	alice := a.newUser("alice")
	a.mustHush(alice, "", "create", "secret", "mounted", "--name", "cfg", "--from", "file:cfg")
	a.mustHush(alice, "", "create", "secret", "env", "TOKEN", "--from", "file:token")

	signalled := writeSpec(t, "signalled", image, `trap 'echo "hup: $(cat "$SECRET_PATH_CFG")"; exit 0' HUP
echo "start: $(cat "$SECRET_PATH_CFG") at $SECRET_PATH_CFG"
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 3`,
		"secrets:\n  - name: cfg\n    refresh: 1s\n    on_change: signal:SIGHUP")
	// No value in a command: the command is in containerd's metadata,
	// which the test greps.
	restarted := writeSpec(t, "restarted", image, `echo "token=$TOKEN"; case "$TOKEN" in new-*) exit 0;; esac; sleep 60; exit 3`,
		"refresh: 1s\non_change: restart\nsecrets: [token]")
	a.mustHush(alice, "", "run", "-f", signalled, "--no-follow")
	a.mustHush(alice, "", "run", "-f", restarted, "--no-follow")
	waitForLog(t, a, alice, "signalled", "start: first-refresh-value at /secrets/cfg/secret")
	waitForLog(t, a, alice, "restarted", "token=old-token-value")

	writeFile(t, values, "cfg", "second-refresh-value")
	writeFile(t, values, "token", "new-token-value")
	for name, want := range map[string]struct{ log, events []string }{
		"signalled": {
			log:    []string{"start: first-refresh-value", "hup: second-refresh-value"},
			events: []string{"Refresh:    cfg: every 1s, on_change signal:SIGHUP", "secret(s) cfg changed", "sent SIGHUP to the workload for changed secret(s) cfg"},
		},
		"restarted": {
			log:    []string{"token=old-token-value\ntoken=new-token-value\n"},
			events: []string{"Refresh:    every 1s, on_change restart", "secret(s) token changed", "restarting the workload for changed secret(s) token", "the workload runs again with the new values"},
		},
	} {
		waitFor(t, name+" completed", 60*time.Second, func() bool {
			return runStatus(t, a, alice, name)["status"] == "COMPLETED"
		})
		out := a.mustHush(alice, "", "logs", name).stdout
		for _, w := range want.log {
			if !strings.Contains(out, w) {
				t.Errorf("run %s: got log\n%s\nwant it to hold %q", name, out, w)
			}
		}
		desc := a.mustHush(alice, "", "describe", "run", name).stdout
		for _, w := range want.events {
			if !strings.Contains(desc, w) {
				t.Errorf("run %s: got\n%s\nwant an event with %q", name, desc, w)
			}
		}
		if _, events, _ := strings.Cut(desc, "Events:"); strings.Contains(events, "-value") {
			t.Errorf("run %s: describe shows a secret value:\n%s", name, desc)
		}
	}

	a.stop()
	for _, root := range []string{a.dataDir, filepath.Join(filepath.Dir(socket), "root")} {
		for _, v := range []string{"first-refresh-value", "second-refresh-value", "old-token-value", "new-token-value"} {
			if hits := grepTree(t, root, []byte(v)); len(hits) > 0 {
				t.Errorf("a secret value is in plaintext in %v", hits)
			}
		}
	}
}
