package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/hashicorp/go-hclog"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// gpuSpec is a CDI spec as NVIDIA's toolkit writes one: each GPU by index
// and by UUID, and "all". Its device nodes are host nodes that exist
// everywhere, mapped to paths of their own.
const gpuSpec = `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu0, hostPath: /dev/zero}]
  - name: GPU-aaaa
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu0, hostPath: /dev/zero}]
  - name: "10"
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu10, hostPath: /dev/full}]
  - name: "2"
    containerEdits:
      deviceNodes: [{path: /dev/fakegpu2, hostPath: /dev/null}]
  - name: all
    containerEdits:
      deviceNodes:
        - {path: /dev/fakegpu0, hostPath: /dev/zero}
        - {path: /dev/fakegpu2, hostPath: /dev/null}
        - {path: /dev/fakegpu10, hostPath: /dev/full}
`

// otherSpec has a kind that is not a GPU by default, and a device whose
// node is missing.
const otherSpec = `cdiVersion: "0.6.0"
kind: example.com/accel
devices:
  - name: "0"
    containerEdits:
      deviceNodes: [{path: /dev/accel0, hostPath: /dev/urandom}]
  - name: gone
    containerEdits:
      deviceNodes: [{path: /dev/accel1, hostPath: /dev/does-not-exist}]
`

func writeSpecs(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func logTo(buf *bytes.Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug})
}

func TestFindDevices(t *testing.T) {
	good := writeSpecs(t, map[string]string{"nvidia.yaml": gpuSpec, "other.yaml": otherSpec})
	broken := writeSpecs(t, map[string]string{"nvidia.yaml": gpuSpec, "broken.json": `{"cdiVersion": "0.6.0", "kind": "bad kind"`})
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	tests := map[string]struct {
		cfg     DeviceConfig
		want    []Device
		wantErr string
		wantLog string
	}{
		"gpus by index, once each, without all": {
			cfg:  DeviceConfig{SpecDirs: []string{good}},
			want: []Device{{ID: "0", CDI: "nvidia.com/gpu=0"}, {ID: "2", CDI: "nvidia.com/gpu=2"}, {ID: "10", CDI: "nvidia.com/gpu=10"}},
		},
		"other kinds when configured": {
			cfg:     DeviceConfig{SpecDirs: []string{good}, Kinds: []string{"example.com/accel", "nvidia.com/gpu"}},
			want:    []Device{{ID: "example.com/accel=0", CDI: "example.com/accel=0"}, {ID: "nvidia.com/gpu=0", CDI: "nvidia.com/gpu=0"}, {ID: "2", CDI: "nvidia.com/gpu=2"}, {ID: "10", CDI: "nvidia.com/gpu=10"}},
			wantLog: "skipping a CDI device whose device node is missing: device=example.com/accel=gone node=/dev/does-not-exist",
		},
		"a broken spec is skipped and named": {
			cfg:     DeviceConfig{SpecDirs: []string{broken}},
			want:    []Device{{ID: "0", CDI: "nvidia.com/gpu=0"}, {ID: "2", CDI: "nvidia.com/gpu=2"}, {ID: "10", CDI: "nvidia.com/gpu=10"}},
			wantLog: "skipping a CDI spec that cannot be used: path=" + filepath.Join(broken, "broken.json"),
		},
		"device nodes without CDI": {
			cfg:  DeviceConfig{SpecDirs: []string{}, Paths: []string{"/dev/null", "/dev/zero"}},
			want: []Device{{ID: "/dev/null", Path: "/dev/null"}, {ID: "/dev/zero", Path: "/dev/zero"}},
		},
		"a device node that CDI gives too counts once": {
			cfg:     DeviceConfig{SpecDirs: []string{good}, Paths: []string{"/dev/null"}},
			want:    []Device{{ID: "0", CDI: "nvidia.com/gpu=0"}, {ID: "2", CDI: "nvidia.com/gpu=2"}, {ID: "10", CDI: "nvidia.com/gpu=10"}},
			wantLog: "a gpu_devices entry is also a CDI device; counting it once: path=/dev/null cdi_device=nvidia.com/gpu=2",
		},
		"a missing spec dir is warned about": {
			cfg:     DeviceConfig{SpecDirs: []string{filepath.Join(good, "nope")}},
			wantLog: "CDI spec dir does not exist",
		},
		"a spec dir that is a file": {
			cfg:     DeviceConfig{SpecDirs: []string{file}},
			wantErr: "cdi_spec_dirs: " + file + " is not a directory",
		},
		"a gpu device that is not a device node": {
			cfg:     DeviceConfig{SpecDirs: []string{}, Paths: []string{file, "/dev/nope"}},
			wantErr: "gpu_devices: " + file + " is not a device node: list device nodes such as /dev/nvidia0\ngpu_devices: /dev/nope: no such file or directory",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var log bytes.Buffer
			got, err := FindDevices(tc.cfg, logTo(&log))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, log.String())
			}
		})
	}
}

func TestVisibleEnv(t *testing.T) {
	tests := map[string]struct {
		devices []Device
		want    []string
	}{
		"none":         {want: []string{"NVIDIA_VISIBLE_DEVICES=void"}},
		"cdi by index": {devices: []Device{{ID: "2", CDI: "nvidia.com/gpu=2"}, {ID: "3", CDI: "nvidia.com/gpu=3"}}, want: []string{"NVIDIA_VISIBLE_DEVICES=2,3", "CUDA_VISIBLE_DEVICES=0,1"}},
		"cdi by uuid":  {devices: []Device{{ID: "GPU-aa", CDI: "nvidia.com/gpu=GPU-aa"}}, want: []string{"NVIDIA_VISIBLE_DEVICES=GPU-aa", "CUDA_VISIBLE_DEVICES=0"}},
		"nodes":        {devices: []Device{{ID: "/dev/nvidia4", Path: "/dev/nvidia4"}, {ID: "/dev/accel0", Path: "/dev/accel0"}}, want: []string{"NVIDIA_VISIBLE_DEVICES=4,/dev/accel0", "CUDA_VISIBLE_DEVICES=0,1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := visibleEnv(tc.devices); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDeviceOpts applies the options to an OCI spec: the container gets
// the CDI device's node at its container path with the host node's
// numbers, the plain node as itself, a cgroup rule for each, and the
// variables, which win over the run's own.
func TestDeviceOpts(t *testing.T) {
	dir := writeSpecs(t, map[string]string{"nvidia.yaml": gpuSpec})
	if err := cdi.Configure(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cdi.Configure(cdi.WithSpecDirs(DefaultCDISpecDirs...)) })
	spec := &Spec{GPUs: 2, Devices: []Device{{ID: "2", CDI: "nvidia.com/gpu=2"}, {ID: "/dev/full", Path: "/dev/full"}}}
	s := &oci.Spec{Process: &specs.Process{Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	for _, opt := range deviceOpts(spec) {
		if err := opt(context.Background(), nil, &containers.Container{}, s); err != nil {
			t.Fatal(err)
		}
	}
	var null, full unix.Stat_t
	unix.Stat("/dev/null", &null)
	unix.Stat("/dev/full", &full)
	want := map[string]uint64{"/dev/fakegpu2": null.Rdev, "/dev/full": full.Rdev}
	for _, d := range s.Linux.Devices {
		rdev, ok := want[d.Path]
		if !ok {
			t.Errorf("the container got device %s, which the run does not hold", d.Path)
			continue
		}
		if d.Major != int64(unix.Major(rdev)) || d.Minor != int64(unix.Minor(rdev)) {
			t.Errorf("device %s is %d:%d, want %d:%d", d.Path, d.Major, d.Minor, unix.Major(rdev), unix.Minor(rdev))
		}
		delete(want, d.Path)
	}
	if len(want) > 0 {
		t.Errorf("the container lacks devices %v", want)
	}
	if n := len(s.Linux.Resources.Devices); n != 2 {
		t.Errorf("got %d device cgroup rules, want 2: %+v", n, s.Linux.Resources.Devices)
	}
	env := strings.Join(s.Process.Env, " ")
	if env != "NVIDIA_VISIBLE_DEVICES=2,/dev/full CUDA_VISIBLE_DEVICES=0,1" {
		t.Errorf("got env %q", env)
	}

	// A run whose devices do not match what it asked for does not start.
	bad := deviceOpts(&Spec{GPUs: 1})
	if err := bad[0](context.Background(), nil, &containers.Container{}, &oci.Spec{}); err == nil || err.Error() != "the run asks for 1 GPU but was given 0" {
		t.Errorf("got %v, want the mismatch refused", err)
	}
}
