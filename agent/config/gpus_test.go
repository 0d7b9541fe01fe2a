package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCapacitySettings(t *testing.T) {
	c, diags := LoadFiles(writeFile(t, "x.hcl", `
node_cpus   = 6.5
node_memory = "28GiB"
runtime "containerd" {
  cdi_spec_dirs = ["/etc/cdi"]
  gpu_kinds     = ["nvidia.com/gpu", "amd.com/gpu"]
  gpu_devices   = ["/dev/nvidia0"]
}
`))
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	rt := c.Runtime(RuntimeContainerd)
	if c.NodeCPUs != 6.5 || c.NodeMemoryBytes() != 28<<30 {
		t.Errorf("got node_cpus %v node_memory %d, want 6.5 and 28 GiB", c.NodeCPUs, c.NodeMemoryBytes())
	}
	if !slices.Equal(rt.CDISpecDirs, []string{"/etc/cdi"}) || len(rt.GPUKinds) != 2 || !slices.Equal(rt.GPUDevices, []string{"/dev/nvidia0"}) {
		t.Errorf("got %+v", rt)
	}

	// Unset, the lists are nil: the runtime's defaults apply. Set to [],
	// CDI is off.
	c, _ = LoadFiles(writeFile(t, "y.hcl", `runtime "containerd" { cdi_spec_dirs = [] }`))
	if rt := c.Runtime(RuntimeContainerd); rt.CDISpecDirs == nil || len(rt.CDISpecDirs) != 0 || rt.GPUKinds != nil {
		t.Errorf("got cdi_spec_dirs %#v gpu_kinds %#v, want [] and nil", rt.CDISpecDirs, rt.GPUKinds)
	}
	if c.NodeMemoryBytes() != 0 {
		t.Errorf("got node_memory %d bytes unset, want 0", c.NodeMemoryBytes())
	}
}

func TestCapacityDiagnostics(t *testing.T) {
	p := writeFile(t, "x.hcl", `node_cpus = 0
node_memory = "lots"
runtime "containerd" {
  cdi_spec_dirs = ["etc/cdi"]
  gpu_kinds     = ["gpu", "nvidia.com/GPU!"]
  gpu_devices   = ["nvidia0"]
}
runtime "exec" {
  gpu_devices = ["/dev/nvidia0"]
}
`)
	_, diags := LoadFiles(p)
	got := strings.ReplaceAll(FormatDiagnostics(diags), filepath.Dir(p)+"/", "")
	for _, want := range []string{
		"x.hcl:1:1: Invalid CPU count",
		`x.hcl:2:1: Invalid memory size; "lots"`,
		`x.hcl:4:3: Invalid CDI spec directory; "etc/cdi" must be an absolute path`,
		`x.hcl:5:3: Invalid GPU kind; "gpu" is not a CDI kind`,
		`x.hcl:5:3: Invalid GPU kind; "nvidia.com/GPU!" is not a CDI kind`,
		`x.hcl:6:3: Invalid GPU device; "nvidia0" must be the absolute path of a device node`,
		`x.hcl:9:3: Unsupported argument; runtime "exec" has no gpu_devices`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics lack %q; got:\n%s", want, got)
		}
	}
}
