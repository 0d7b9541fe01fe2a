package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	ctrdcdi "github.com/containerd/containerd/v2/pkg/cdi"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

// Defaults for finding GPUs: where NVIDIA's container toolkit writes its
// CDI specs (`nvidia-ctk cdi generate`), and the kind of its GPUs.
var (
	DefaultCDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}
	DefaultGPUKinds    = []string{"nvidia.com/gpu"}
)

// Environment variables that tell GPU software which devices a run holds.
const (
	// EnvNvidiaVisible holds the host's names of the run's GPUs, as
	// NVIDIA's tools name them (an index or a UUID), comma-separated; or
	// "void" for a run without GPUs, so that NVIDIA's legacy runtime hook
	// gives it none even when its image asks for all.
	EnvNvidiaVisible = "NVIDIA_VISIBLE_DEVICES"
	// EnvCUDAVisible holds 0 to N-1 for a run of N GPUs: the container
	// sees only its own devices, and CUDA numbers those it sees from 0.
	EnvCUDAVisible = "CUDA_VISIBLE_DEVICES"
)

// DeviceConfig says where a runtime finds the GPUs it gives runs.
type DeviceConfig struct {
	// SpecDirs are searched for CDI specs (*.json, *.yaml). Nil means
	// DefaultCDISpecDirs; empty means none. A dir that is set but does not
	// exist is warned about, since a toolkit may create it later.
	SpecDirs []string
	// Kinds are the CDI kinds, as vendor.com/class, whose devices count as
	// GPUs. Nil means DefaultGPUKinds.
	Kinds []string
	// Paths are device nodes, such as /dev/nvidia0, given to runs as GPUs
	// without CDI: each appears at the same path in the container.
	Paths []string
}

// DeviceRuntime is implemented by runtimes that give runs devices whole.
type DeviceRuntime interface {
	// Devices returns the node's GPUs, in the order runs are given them.
	Devices() []Device
}

var _ DeviceRuntime = (*Containerd)(nil)

// Devices returns the GPUs that UseDevices found.
func (r *Containerd) Devices() []Device { return slices.Clone(r.devices) }

// UseDevices finds the node's GPUs and points containerd's CDI support at
// the same spec dirs. containerd's CDI injection uses the process's
// default CDI cache, so one agent process has one set of spec dirs.
func (r *Containerd) UseDevices(cfg DeviceConfig) error {
	devices, err := FindDevices(cfg, r.logger)
	if err != nil {
		return err
	}
	if dirs := specDirs(cfg); len(dirs) > 0 {
		// Refreshed at each injection, so that a spec rewritten since
		// start is the one used.
		if err := cdi.Configure(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false)); err != nil {
			return fmt.Errorf("configure CDI: %w", err)
		}
	}
	r.devices = devices
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
	}
	r.logger.Info("found GPUs", "count", len(devices), "ids", strings.Join(ids, ","), "cdi_spec_dirs", strings.Join(specDirs(cfg), ","))
	return nil
}

func specDirs(cfg DeviceConfig) []string {
	if cfg.SpecDirs == nil {
		return DefaultCDISpecDirs
	}
	return cfg.SpecDirs
}

// FindDevices returns the GPUs of the node: the devices of GPU kinds in
// the CDI specs of cfg's dirs, except each kind's "all", then the device
// nodes cfg lists. Two CDI devices with the same device nodes, such as a
// GPU named both by index and by UUID, count once, under the name that
// sorts first. A spec that cannot be used is skipped with a warning that
// names its file; a spec dir or device node that cannot be used is an
// error.
func FindDevices(cfg DeviceConfig, logger hclog.Logger) ([]Device, error) {
	dirs := specDirs(cfg)
	var errs []error
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if cfg.SpecDirs != nil {
				logger.Warn("CDI spec dir does not exist; no GPUs from it until it does and the agent restarts", "dir", dir)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("cdi_spec_dirs: %w", err))
		case !fi.IsDir():
			errs = append(errs, fmt.Errorf("cdi_spec_dirs: %s is not a directory", dir))
		default:
			if _, err := os.ReadDir(dir); err != nil {
				errs = append(errs, fmt.Errorf("cdi_spec_dirs: %w", err))
			}
		}
	}
	kinds := cfg.Kinds
	if kinds == nil {
		kinds = DefaultGPUKinds
	}
	var found []Device
	nodes := map[string]string{} // device nodes' host paths -> the device that has them
	if len(dirs) > 0 && len(errs) == 0 {
		cache, _ := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
		for path, specErrs := range cache.GetErrors() {
			logger.Warn("skipping a CDI spec that cannot be used", "path", path, "error", errors.Join(specErrs...))
		}
		found = cdiDevices(cache, kinds, nodes, logger)
	}
	for _, p := range cfg.Paths {
		if err := checkDeviceNode(p); err != nil {
			errs = append(errs, fmt.Errorf("gpu_devices: %w", err))
			continue
		}
		if by, ok := nodes[p]; ok {
			logger.Warn("a gpu_devices entry is also a CDI device; counting it once", "path", p, "cdi_device", by)
			continue
		}
		nodes[p] = p
		found = append(found, Device{ID: p, Path: p})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return found, nil
}

// cdiDevices returns the cache's devices of the given kinds, in order,
// each counted once; nodes records the host paths of their device nodes.
func cdiDevices(cache *cdi.Cache, kinds []string, nodes map[string]string, logger hclog.Logger) []Device {
	type candidate struct {
		kind, name, qualified string
		nodes                 []string
	}
	var cands []candidate
	for _, q := range cache.ListDevices() {
		vendor, class, name, err := parser.ParseQualifiedName(q)
		kind := vendor + "/" + class
		if err != nil || name == "all" || !slices.Contains(kinds, kind) {
			continue
		}
		dev := cache.GetDevice(q)
		var paths []string
		missing := ""
		for _, n := range dev.ContainerEdits.DeviceNodes {
			p := cmp.Or(n.HostPath, n.Path)
			if _, err := os.Lstat(p); err != nil && missing == "" {
				missing = p
			}
			paths = append(paths, p)
		}
		if missing != "" {
			logger.Warn("skipping a CDI device whose device node is missing", "device", q, "node", missing, "path", dev.GetSpec().GetPath())
			continue
		}
		slices.Sort(paths)
		cands = append(cands, candidate{kind: kind, name: name, qualified: q, nodes: paths})
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(slices.Index(kinds, a.kind), slices.Index(kinds, b.kind)), compareNames(a.name, b.name))
	})
	names := map[string]int{}
	for _, c := range cands {
		names[c.name]++
	}
	var out []Device
	for _, c := range cands {
		key := strings.Join(c.nodes, "\x00")
		if by, ok := nodes[key]; ok && key != "" {
			logger.Debug("a CDI device has the device nodes of another; counting them once", "device", c.qualified, "same_as", by)
			continue
		}
		if key != "" {
			nodes[key] = c.qualified
			for _, p := range c.nodes {
				nodes[p] = c.qualified
			}
		}
		id := c.name
		if names[c.name] > 1 {
			id = c.qualified // the same name in two kinds
		}
		out = append(out, Device{ID: id, CDI: c.qualified})
	}
	return out
}

// compareNames orders device names numerically when both are numbers, so
// that GPU 10 follows GPU 9, and numbers before other names.
func compareNames(a, b string) int {
	na, errA := strconv.Atoi(a)
	nb, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(na, nb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// checkDeviceNode reports an error unless path is a character or block
// device.
func checkDeviceNode(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
		return fmt.Errorf("%s is not a device node: list device nodes such as /dev/nvidia0", path)
	}
	return nil
}

// deviceOpts gives a container the devices its run holds, whole: CDI
// devices through containerd's CDI support, device nodes as themselves,
// and the variables that name them. They go after the run's own env, so
// that a run cannot name devices it does not hold.
func deviceOpts(spec *Spec) []oci.SpecOpts {
	opts := []oci.SpecOpts{func(context.Context, oci.Client, *containers.Container, *oci.Spec) error {
		// Admission gives a run its GPUs before it starts.
		if spec.GPUs != len(spec.Devices) {
			return fmt.Errorf("the run asks for %s but was given %d", gpuCount(spec.GPUs), len(spec.Devices))
		}
		return nil
	}}
	var qualified []string
	for _, d := range spec.Devices {
		if d.CDI != "" {
			qualified = append(qualified, d.CDI)
		} else {
			opts = append(opts, oci.WithLinuxDevice(d.Path, "rwm"))
		}
	}
	if len(qualified) > 0 {
		opts = append(opts, ctrdcdi.WithCDIDevices(qualified...))
	}
	return append(opts, oci.WithEnv(visibleEnv(spec.Devices)))
}

// nvidiaIndex returns N for /dev/nvidiaN, the device node of NVIDIA GPU N.
func nvidiaIndex(path string) (string, bool) {
	n, ok := strings.CutPrefix(path, "/dev/nvidia")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return "", false
	}
	return n, true
}

// visibleEnv returns the variables that name devices to GPU software.
func visibleEnv(devices []Device) []string {
	if len(devices) == 0 {
		return []string{EnvNvidiaVisible + "=void"}
	}
	names := make([]string, len(devices))
	ordinals := make([]string, len(devices))
	for i, d := range devices {
		ordinals[i] = strconv.Itoa(i)
		n, nvidia := nvidiaIndex(d.Path)
		switch {
		case d.CDI != "":
			_, _, names[i] = parser.ParseDevice(d.CDI)
		case nvidia:
			names[i] = n
		default:
			names[i] = d.ID
		}
	}
	return []string{EnvNvidiaVisible + "=" + strings.Join(names, ","), EnvCUDAVisible + "=" + strings.Join(ordinals, ",")}
}

// gpuCount renders a number of GPUs: "1 GPU", "2 GPUs".
func gpuCount(n int) string {
	if n == 1 {
		return "1 GPU"
	}
	return fmt.Sprintf("%d GPUs", n)
}
