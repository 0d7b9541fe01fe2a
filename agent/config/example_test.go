package config

import "testing"

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
