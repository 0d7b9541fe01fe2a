package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunLogCap runs a workload that prints megabytes under a small
// max_log_size: the log on disk stays within the cap and holds no
// plaintext, a reader is told what was dropped, and a tail reads the end.
func TestRunLogCap(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\nmax_log_size = \"1MiB\"\n%s",
		filepath.Join(dir, "state"), execRuntime(`stop_grace = "2s"`)))
	dataDir := filepath.Join(dir, "data")
	a := startAgent(t, dataDir, "-config", cfg)
	user := a.newUser("alice")
	const canary = "canary-log-value-41"
	a.mustHush(user, "", "create", "secret", "env", "SECRET_STUFF="+canary)

	// About 5 MB of output, each line carrying the secret.
	spec := writeSpec(t, "chatty", "ignored", `seq 1 200000 | sed "s/^/$SECRET_STUFF /"`, "max_log_size: 256KiB")
	a.mustHush(user, "", "run", "-f", spec)
	run := runStatus(t, a, user, "chatty")
	if run["status"] != "COMPLETED" || run["max_log_bytes"] != float64(256<<10) {
		t.Fatalf("got status %v, max_log_bytes %v; want COMPLETED and %d", run["status"], run["max_log_bytes"], 256<<10)
	}

	out := a.mustHush(user, "", "logs", "chatty").stdout
	var all strings.Builder
	for i := 1; i <= 200000; i++ {
		fmt.Fprintf(&all, "%s %d\n", canary, i)
	}
	marker := regexp.MustCompile(`^\[hush: [0-9.]+ MiB of earlier output dropped: this run's log is capped at 256 KiB\]\n`).FindString(out)
	if kept := out[len(marker):]; marker == "" || !strings.HasSuffix(all.String(), kept) || len(kept) < 128<<10 {
		t.Errorf("logs: got %.200q ... %q, want the marker, then at least 128 KiB of the end of the output", out, out[max(0, len(out)-60):])
	}
	if desc := a.mustHush(user, "", "describe", "run", "chatty").stdout; !strings.Contains(desc, "Log cap:    256 KiB\n") {
		t.Errorf("describe does not show the log cap:\n%s", desc)
	}
	if got := a.mustHush(user, "", "logs", "chatty", "--tail", "1").stdout; got != canary+" 200000\n" {
		t.Errorf("logs --tail 1: got %q", got)
	}
	if got := a.mustHush(user, "", "logs", "chatty", "--tail", "2", "-f").stdout; got != canary+" 199999\n"+canary+" 200000\n" {
		t.Errorf("logs --tail 2 -f: got %q", got)
	}

	var size int64
	logDir := filepath.Join(dataDir, "logs", run["id"].(string))
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, _ := e.Info()
		size += fi.Size()
	}
	if size > 256<<10 || len(entries) < 2 {
		t.Errorf("the run's log holds %d bytes in %d segments, want at most %d", size, len(entries), 256<<10)
	}
	if hits := grepTree(t, dataDir, []byte(canary)); len(hits) > 0 {
		t.Errorf("the secret is in plaintext in %v", hits)
	}

	r := a.hush(user, "", "run", "-f", writeSpec(t, "greedy", "ignored", "true", "max_log_size: 2MiB"))
	if r.code != 1 || !strings.Contains(r.stderr, "max_log_size 2 MiB (2097152 bytes) is over this agent's max_log_size of 1 MiB") {
		t.Errorf("a run asking for more than the agent's cap: %s", r)
	}

	a.mustHush(user, "", "delete", "run", "chatty", "-y")
	if _, err := os.Stat(logDir); !os.IsNotExist(err) {
		t.Errorf("the log is still there after delete: %v", err)
	}
}
