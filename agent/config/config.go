// Package config is the agent's configuration: its defaults, the HCL files
// that override them, and the checks that report every problem at once with
// the file, line and column it comes from.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hush-sh/hush/sdk/userfile"
)

// maxFileSize bounds a config file; a named pipe or a device is refused
// rather than waited on.
const maxFileSize = 4 << 20

// Defaults for settings that are not set.
const (
	DefaultBind      = "127.0.0.1:4747"
	DefaultCluster   = "default"
	DefaultLogLevel  = "info"
	DefaultNamespace = "hush"
	DefaultStopGrace = "10s"
	DefaultLogSize   = "64MiB"
)

// Runtime names for the runtime block's label.
const (
	RuntimeContainerd = "containerd"
	RuntimeExec       = "exec"
)

// Config is the agent's configuration.
type Config struct {
	// DataDir holds the store, the keyring and the root token. Required
	// outside dev mode; dev mode uses a fresh temporary directory.
	DataDir string `hcl:"data_dir,optional"`
	// StateDir holds what lives only while the agent runs, such as each
	// run's secret tmpfs. Default /run/hush, or a directory under the
	// system's temp dir when the agent is not root.
	StateDir string `hcl:"state_dir,optional"`
	// Bind is the host:port the HTTP API listens on. Default 127.0.0.1:4747.
	Bind string `hcl:"bind,optional"`
	// Cluster names the cluster this agent belongs to. Default "default".
	Cluster string `hcl:"cluster,optional"`
	// NodeName names this node within its cluster. Default: the host name.
	NodeName string `hcl:"node_name,optional"`
	// LogLevel is one of trace, debug, info, warn, error. Default info.
	LogLevel string `hcl:"log_level,optional"`
	// LogJSON writes logs as JSON lines instead of text. Default false.
	LogJSON bool `hcl:"log_json,optional"`
	// MaxLogSize caps each run's sealed log on disk, as a size such as
	// "64MiB" or "1Gi": past it, the run's oldest output is dropped. It is
	// also the most a run spec's max_log_size may ask for. Default "64MiB";
	// at least "64KiB".
	MaxLogSize string `hcl:"max_log_size,optional"`
	// LeaveRunsOnShutdown keeps runs going when the agent stops, as for
	// an upgrade: the next agent on this data dir adopts them. Set it to
	// false to stop every run first, as hush 0.2 did. Default true; a dev
	// agent without a data dir, which it throws away, always stops its
	// runs.
	LeaveRunsOnShutdown bool `hcl:"leave_runs_on_shutdown,optional"`
	// NodeCPUs is how many CPUs the runs on this node may ask for in
	// total, such as 6 on an 8-CPU host that keeps 2 for itself. Default:
	// the host's CPUs.
	NodeCPUs float64 `hcl:"node_cpus,optional"`
	// NodeMemory is how much memory the runs on this node may ask for in
	// total, as a size such as "28GiB". Default: the host's memory.
	NodeMemory string `hcl:"node_memory,optional"`
	// MaskSecrets replaces, in the logs of runs whose spec does not say
	// otherwise (mask_secrets), each value of their secrets with ***: as
	// it is, base64- and URL-encoded, and line by line. Default false, so
	// that a run that prints its secret shows it.
	MaskSecrets bool `hcl:"mask_secrets,optional"`
	// KeyringResealRate bounds the database records per second that a
	// keyring rotation seals again under the new key, so that a rotation
	// does not crowd out requests; run logs go at disk speed. Default 2000.
	KeyringResealRate int `hcl:"keyring_reseal_rate,optional"`
	// MetricsBind, when set, is a host:port where the agent serves
	// /v1/metrics to anyone, for a Prometheus that holds no token; the API
	// serves them to management tokens in any case. Default: none.
	MetricsBind string `hcl:"metrics_bind,optional"`
	// PluginDir is searched for hush-provider-* executables. Default: none.
	PluginDir string `hcl:"plugin_dir,optional"`
	// Plugins declares provider plugins, one block per plugin name.
	Plugins []*PluginConfig `hcl:"plugin,block"`
	// Runtimes configures the workload runtimes, one block per runtime.
	Runtimes []*RuntimeConfig `hcl:"runtime,block"`
	// TLS makes the agent serve HTTPS; see TLSConfig. Default: none, and
	// then the agent serves plain HTTP on loopback only.
	TLS *TLSConfig `hcl:"tls,block"`
	// Server makes the agent one of the servers of a cluster of several;
	// see ServerConfig. Default: none, a cluster of its own.
	Server *ServerConfig `hcl:"server,block"`
	// Client says whether the agent runs workloads, and makes it a client
	// of a cluster's servers; see ClientConfig. Default: none, and then
	// the agent runs workloads.
	Client *ClientConfig `hcl:"client,block"`
	// InsecureHTTP lets an agent without TLS bind to an address that
	// other hosts reach, as behind a TLS-terminating proxy. Default false.
	InsecureHTTP bool `hcl:"insecure_http,optional"`
	// Audit, when set, makes the agent write an audit log; see
	// AuditConfig.
	Audit *AuditConfig `hcl:"audit,block"`
	// HTTP sets the API's timeouts, connection cap and rate limit; see
	// HTTPConfig. Optional.
	HTTP *HTTPConfig `hcl:"http,block"`
	// Seal wraps the keyring with a key kept outside the data dir; see
	// SealConfig. Default: seal "file" beside the data dir, outside dev.
	Seal *SealConfig `hcl:"seal,block"`

	// ranges records where each attribute was last set, for diagnostics.
	ranges map[string]hcl.Range
}

// PluginConfig is a plugin "NAME" block.
type PluginConfig struct {
	// Name is the provider name used in references ("vault" in vault:REF).
	Name string `hcl:"name,label"`
	// Path is the plugin executable. Default: PluginDir/hush-provider-NAME.
	Path string `hcl:"path,optional"`
	// SHA256 is the executable's expected checksum, hex encoded, checked
	// before every launch. Required outside dev mode.
	SHA256 string `hcl:"sha256,optional"`
	// Args are passed to the plugin executable.
	Args []string `hcl:"args,optional"`
	// Timeout bounds each Resolve call to the plugin, as a duration such
	// as "30s": a run whose references take longer fails with an error
	// naming the plugin. Default "30s"; at least "1s".
	Timeout string `hcl:"timeout,optional"`
	// Config is handed to the plugin to validate and use.
	Config *PluginBody `hcl:"config,block"`
	// Allow says which references each user may name; see AllowConfig.
	// Without any allow block only management tokens may use the plugin.
	Allow []*AllowConfig `hcl:"allow,block"`

	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// AllowConfig is an allow block of a plugin: the users it names may create
// and resolve references that match one of its patterns. Management tokens
// may name any reference.
type AllowConfig struct {
	// Users are user names, or "*" for every user: a list of strings.
	Users hcl.Expression `hcl:"users"`
	// Refs are patterns of references: "*" stands for any run of
	// characters, and ${user} for the user's own name, as in
	// refs = ["${user}/*"].
	Refs hcl.Expression `hcl:"refs"`

	// users is Users evaluated, by Validate.
	users []string
}

// PluginBody holds a plugin's config block undecoded: its schema belongs to
// the plugin.
type PluginBody struct {
	Body hcl.Body `hcl:",remain"`
}

// RuntimeConfig is a runtime "containerd" or runtime "exec" block.
type RuntimeConfig struct {
	// Type is the runtime: containerd or exec.
	Type string `hcl:"type,label"`
	// Address is containerd's socket. Default: containerd's standard socket.
	Address string `hcl:"address,optional"`
	// Namespace is the containerd namespace for runs. Default "hush".
	Namespace string `hcl:"namespace,optional"`
	// StopGrace is how long a stopping run has between SIGTERM and SIGKILL,
	// as a Go duration. Default "10s".
	StopGrace string `hcl:"stop_grace,optional"`
	// UIDRange, exec only, is "FIRST-LAST": each active run executes as
	// its own uid from this range (gid the same number, no supplementary
	// groups), so runs cannot read each other's files or processes.
	// Reserve the range for this agent: no account or group may use it.
	// Default: none.
	UIDRange string `hcl:"uid_range,optional"`
	// CDISpecDirs, containerd only, are where the agent finds Container
	// Device Interface specs, such as those `nvidia-ctk cdi generate`
	// writes. Default ["/etc/cdi", "/var/run/cdi"]; [] finds no GPUs
	// through CDI.
	CDISpecDirs []string `hcl:"cdi_spec_dirs,optional"`
	// GPUKinds, containerd only, are the CDI kinds (vendor.com/class)
	// whose devices are GPUs; each kind's "all" device is not one.
	// Default ["nvidia.com/gpu"].
	GPUKinds []string `hcl:"gpu_kinds,optional"`
	// GPUDevices, containerd only, are device nodes given to runs whole as
	// GPUs without CDI, such as ["/dev/nvidia0", "/dev/nvidia1"]; each
	// appears at its own path in the container, and nothing else comes
	// with it. Default: none.
	GPUDevices []string `hcl:"gpu_devices,optional"`
	// User, exec only, names a host account that every run executes as
	// (its uid and primary gid, no supplementary groups). Runs then share
	// one uid and can read each other's /proc/PID/environ; UIDRange is
	// the isolating choice. Default: none.
	User string `hcl:"user,optional"`

	// DeclRange is where the block was declared.
	DeclRange hcl.Range
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	state := "/run/hush"
	if os.Geteuid() != 0 {
		state = filepath.Join(os.TempDir(), fmt.Sprintf("hush-%d", os.Geteuid()))
	}
	return &Config{
		StateDir:   state,
		Bind:       DefaultBind,
		Cluster:    DefaultCluster,
		NodeName:   host,
		LogLevel:   DefaultLogLevel,
		MaxLogSize: DefaultLogSize,
		ranges:     map[string]hcl.Range{},

		LeaveRunsOnShutdown: true,
	}
}

// LoadFiles reads HCL files over the defaults, later files overriding
// earlier ones: attributes replace, and blocks replace the block of the same
// name. It then validates the result.
func LoadFiles(paths ...string) (*Config, hcl.Diagnostics) {
	c := DefaultConfig()
	var diags hcl.Diagnostics
	for _, p := range paths {
		src, err := userfile.ReadFile(p, maxFileSize)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read config file",
				Detail:   fmt.Sprintf("%s: %v", p, err),
			})
			continue
		}
		diags = append(diags, c.decode(p, src)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return c, c.Validate()
}

// decode applies one file's settings over c.
func (c *Config) decode(filename string, src []byte) hcl.Diagnostics {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return diags
	}
	plugins, runtimes := c.Plugins, c.Runtimes
	c.Plugins, c.Runtimes = nil, nil
	diags = gohcl.DecodeBody(f.Body, nil, c)

	body := f.Body.(*hclsyntax.Body)
	for name, attr := range body.Attributes {
		c.ranges[name] = attr.SrcRange
	}
	for _, b := range body.Blocks {
		if b.Type == "tls" && c.TLS != nil {
			for name, attr := range b.Body.Attributes {
				c.ranges["tls."+name] = attr.SrcRange
			}
			c.TLS.DeclRange = b.DefRange()
		}
		if b.Type == "audit" && c.Audit != nil {
			for name, attr := range b.Body.Attributes {
				c.ranges["audit."+name] = attr.SrcRange
			}
		}
		if b.Type == "server" && c.Server != nil {
			for name, attr := range b.Body.Attributes {
				c.ranges["server."+name] = attr.SrcRange
			}
			c.Server.DeclRange = b.DefRange()
		}
		if b.Type == "client" && c.Client != nil {
			for name, attr := range b.Body.Attributes {
				c.ranges["client."+name] = attr.SrcRange
			}
			c.Client.DeclRange = b.DefRange()
		}
		if b.Type == "seal" && c.Seal != nil {
			c.Seal.DeclRange = b.DefRange()
		}
		if b.Type == "http" {
			for name, attr := range b.Body.Attributes {
				c.ranges["http."+name] = attr.SrcRange
			}
		}
		if len(b.Labels) == 0 {
			continue
		}
		for name, attr := range b.Body.Attributes {
			c.ranges[b.Type+"."+b.Labels[0]+"."+name] = attr.SrcRange
		}
		switch b.Type {
		case "plugin":
			for _, p := range c.Plugins {
				if p.Name == b.Labels[0] {
					p.DeclRange = b.DefRange()
				}
			}
		case "runtime":
			for _, r := range c.Runtimes {
				if r.Type == b.Labels[0] {
					r.DeclRange = b.DefRange()
				}
			}
		}
	}
	diags = append(diags, duplicateLabels("plugin", body)...)
	diags = append(diags, duplicateLabels("runtime", body)...)

	c.Plugins = mergeByName(plugins, c.Plugins, func(p *PluginConfig) string { return p.Name })
	c.Runtimes = mergeByName(runtimes, c.Runtimes, func(r *RuntimeConfig) string { return r.Type })
	return diags
}

// duplicateLabels reports a block type declared twice with the same label in
// one file, where the second would silently win.
func duplicateLabels(blockType string, body *hclsyntax.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]hcl.Range{}
	for _, b := range body.Blocks {
		if b.Type != blockType || len(b.Labels) == 0 {
			continue
		}
		if first, ok := seen[b.Labels[0]]; ok {
			r := b.DefRange()
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block %q", blockType, b.Labels[0]),
				Detail:   fmt.Sprintf("It is already declared at %s; merge the two blocks.", first),
				Subject:  &r,
			})
			continue
		}
		seen[b.Labels[0]] = b.DefRange()
	}
	return diags
}

// mergeByName returns base with each element of over replacing the base
// element of the same name, or appended when new.
func mergeByName[T any](base, over []T, name func(T) string) []T {
	out := slices.Clone(base)
	for _, o := range over {
		i := slices.IndexFunc(out, func(b T) bool { return name(b) == name(o) })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	return out
}

// Runtime returns the block for a runtime type, with defaults filled in.
func (c *Config) Runtime(typ string) *RuntimeConfig {
	r := &RuntimeConfig{Type: typ}
	if i := slices.IndexFunc(c.Runtimes, func(r *RuntimeConfig) bool { return r.Type == typ }); i >= 0 {
		cp := *c.Runtimes[i]
		r = &cp
	}
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	if r.StopGrace == "" {
		r.StopGrace = DefaultStopGrace
	}
	return r
}

// FormatDiagnostics renders diagnostics one per line as
// "file:line:col: summary; detail", the form editors and people can jump to.
func FormatDiagnostics(diags hcl.Diagnostics) string {
	var b strings.Builder
	for i, d := range diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; ")
			b.WriteString(d.Detail)
		}
	}
	return b.String()
}
