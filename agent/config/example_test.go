package config

import (
	"os"
	"strings"
	"testing"
)

// The shipped example must always load.
func TestExampleConfig(t *testing.T) {
	c, diags := LoadFiles("../../examples/agent.hcl")
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	if c.DataDir != "/var/lib/hush" || c.Runtime(RuntimeContainerd).Address != "/run/containerd/containerd.sock" {
		t.Errorf("got data_dir %q, containerd address %q", c.DataDir, c.Runtime(RuntimeContainerd).Address)
	}
}

// The exec block that the example shows commented out must load too.
func TestExampleExecBlock(t *testing.T) {
	src, err := os.ReadFile("../../examples/agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, line := range strings.Split(string(src), "\n") {
		if len(block) > 0 || line == `# runtime "exec" {` {
			block = append(block, strings.TrimPrefix(line, "# "))
			if line == "# }" {
				break
			}
		}
	}
	c, diags := LoadFiles(writeFile(t, "exec.hcl", strings.Join(block, "\n")))
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	if got := c.Runtime(RuntimeExec).UIDRange; got != ExampleUIDRange {
		t.Errorf("got uid_range %q, want %q", got, ExampleUIDRange)
	}
}
