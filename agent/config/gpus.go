package config

import (
	"fmt"
	"path/filepath"

	"tags.cncf.io/container-device-interface/pkg/parser"
)

// validateGPUs checks the settings by which the containerd runtime finds
// GPUs: paths are absolute and kinds are CDI kinds.
func (r *RuntimeConfig) validateGPUs() []problem {
	var problems []problem
	for _, dir := range r.CDISpecDirs {
		if !filepath.IsAbs(dir) {
			problems = append(problems, problem{"cdi_spec_dirs", "Invalid CDI spec directory",
				fmt.Sprintf("%q must be an absolute path, such as /etc/cdi.", dir)})
		}
	}
	for _, kind := range r.GPUKinds {
		vendor, class := parser.ParseQualifier(kind)
		if vendor == "" || class == "" || parser.ValidateVendorName(vendor) != nil || parser.ValidateClassName(class) != nil {
			problems = append(problems, problem{"gpu_kinds", "Invalid GPU kind",
				fmt.Sprintf("%q is not a CDI kind: give vendor.com/class, as in a CDI spec's kind, such as \"nvidia.com/gpu\".", kind)})
		}
	}
	for _, dev := range r.GPUDevices {
		if !filepath.IsAbs(dev) {
			problems = append(problems, problem{"gpu_devices", "Invalid GPU device",
				fmt.Sprintf("%q must be the absolute path of a device node, such as /dev/nvidia0.", dev)})
		}
	}
	return problems
}
