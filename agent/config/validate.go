package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/spec"
)

// isClusterName reports whether s can name a cluster or a containerd
// namespace: a name of up to 63 characters, with '.' and '-' inside.
func isClusterName(s string) bool { return api.IsName(s, 63, ".-") }

// IsPluginName reports whether s can name a plugin: up to 63 lowercase
// letters, digits and '-', a letter or digit first.
func IsPluginName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// Validate checks every setting and returns all problems at once, each
// pointing at the attribute it is about when it came from a file.
func (c *Config) Validate() hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(key, summary, detail string, fallback *hcl.Range) {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
		if r, ok := c.ranges[key]; ok {
			d.Subject = &r
		} else if fallback != nil && fallback.Filename != "" {
			d.Subject = fallback
		}
		diags = append(diags, d)
	}

	if err := checkBind(c.Bind); err != nil {
		bad("bind", "Invalid bind address", err.Error(), nil)
	}
	if c.MetricsBind != "" {
		if err := checkBind(c.MetricsBind); err != nil {
			bad("metrics_bind", "Invalid metrics address", err.Error(), nil)
		}
	}
	c.validateTLS(bad)
	c.validateServer(bad)
	c.validateNodeTTL(bad)
	c.validateClient(bad)
	c.validateAudit(bad)
	c.validateSeal(bad)
	if !isClusterName(c.Cluster) {
		bad("cluster", "Invalid cluster name",
			fmt.Sprintf("%q must be lowercase letters, digits, '.' or '-', at most 63 characters, starting and ending with a letter or digit.", c.Cluster), nil)
	}
	if strings.TrimSpace(c.NodeName) == "" {
		bad("node_name", "Invalid node name", "node_name must not be empty.", nil)
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		bad("log_level", "Invalid log level",
			fmt.Sprintf("%q is not one of %s.", c.LogLevel, strings.Join(logLevels, ", ")), nil)
	}
	if n, err := spec.ParseSize(c.MaxLogSize); err != nil {
		bad("max_log_size", "Invalid log size", fmt.Sprintf("%q: %v.", c.MaxLogSize, err), nil)
	} else if n < api.MinLogSize {
		bad("max_log_size", "Invalid log size", fmt.Sprintf("%q is below the smallest log cap: give at least \"%dKiB\".", c.MaxLogSize, api.MinLogSize>>10), nil)
	}
	if _, set := c.ranges["node_cpus"]; set && c.NodeCPUs <= 0 {
		bad("node_cpus", "Invalid CPU count",
			fmt.Sprintf("%v: give the number of CPUs runs may ask for in total, such as 6, or leave it out to use the host's.", c.NodeCPUs), nil)
	}
	if _, set := c.ranges["keyring_reseal_rate"]; set && c.KeyringResealRate <= 0 {
		bad("keyring_reseal_rate", "Invalid rate",
			fmt.Sprintf("%v: give the records per second a keyring rotation may seal again, such as 2000, or leave it out.", c.KeyringResealRate), nil)
	}
	if c.NodeMemory != "" {
		if n, err := spec.ParseSize(c.NodeMemory); err != nil || n <= 0 {
			bad("node_memory", "Invalid memory size",
				fmt.Sprintf("%q: give the memory runs may ask for in total, such as \"28GiB\", or leave it out to use the host's.", c.NodeMemory), nil)
		}
	}
	if c.PluginDir != "" && !filepath.IsAbs(c.PluginDir) {
		bad("plugin_dir", "Invalid plugin directory",
			fmt.Sprintf("%q must be an absolute path.", c.PluginDir), nil)
	}

	// A relative data dir would move with the directory the agent is
	// started from, and the runs and plugins it starts do not share it.
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		bad("data_dir", "Invalid data directory",
			fmt.Sprintf("%q must be an absolute path, such as /var/lib/hush.", c.DataDir), nil)
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "Invalid state directory",
			fmt.Sprintf("%q must be an absolute path.", c.StateDir), nil)
	}

	c.HTTP.validate(bad)

	for _, p := range c.Plugins {
		at := func(attr string) string { return "plugin." + p.Name + "." + attr }
		decl := p.DeclRange
		if !IsPluginName(p.Name) {
			bad("", "Invalid plugin name",
				fmt.Sprintf("plugin %q: names are lowercase letters, digits and '-', starting with a letter or digit.", p.Name), &decl)
		}
		if p.Path == "" && c.PluginDir == "" {
			bad("", "Missing plugin path",
				fmt.Sprintf("plugin %q: set path, or set plugin_dir so that hush-provider-%s is found there.", p.Name, p.Name), &decl)
		}
		if p.Path != "" && !filepath.IsAbs(p.Path) {
			bad(at("path"), "Invalid plugin path",
				fmt.Sprintf("plugin %q: %q must be an absolute path.", p.Name, p.Path), &decl)
		}
		if _, d := p.ConfigJSON(); d.HasErrors() {
			diags = append(diags, d...)
		}
		diags = append(diags, validateAllow(p)...)
		p.validateTimeout(bad)
		if p.SHA256 != "" {
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 {
				bad(at("sha256"), "Invalid plugin checksum",
					fmt.Sprintf("plugin %q: sha256 must be 64 hex digits, as printed by `sha256sum`.", p.Name), &decl)
			}
		}
	}

	for _, r := range c.Runtimes {
		at := func(attr string) string { return "runtime." + r.Type + "." + attr }
		decl := r.DeclRange
		switch r.Type {
		case RuntimeContainerd:
			if r.Namespace != "" && !isClusterName(r.Namespace) {
				bad(at("namespace"), "Invalid containerd namespace",
					fmt.Sprintf("%q must be lowercase letters, digits, '.' or '-'.", r.Namespace), &decl)
			}
			for attr, v := range map[string]string{"uid_range": r.UIDRange, "user": r.User} {
				if v != "" {
					bad(at(attr), "Unsupported argument",
						fmt.Sprintf("runtime \"containerd\" has no %s; it isolates each run in a container. Set it in a runtime \"exec\" block.", attr), &decl)
				}
			}
			for _, p := range r.validateGPUs() {
				bad(at(p.attr), p.summary, p.detail, &decl)
			}
		case RuntimeExec:
			for attr, v := range map[string]string{"address": r.Address, "namespace": r.Namespace,
				"cdi_spec_dirs": strings.Join(r.CDISpecDirs, ","), "gpu_kinds": strings.Join(r.GPUKinds, ","), "gpu_devices": strings.Join(r.GPUDevices, ",")} {
				if v != "" {
					bad(at(attr), "Unsupported argument",
						fmt.Sprintf("runtime \"exec\" has no %s; it runs commands on the host.", attr), &decl)
				}
			}
			for _, p := range r.validateRunUsers() {
				bad(at(p.attr), p.summary, p.detail, &decl)
			}
		default:
			bad("", "Unknown runtime",
				fmt.Sprintf("runtime %q: use %q or %q.", r.Type, RuntimeContainerd, RuntimeExec), &decl)
			continue
		}
		if r.StopGrace != "" {
			if d, err := time.ParseDuration(r.StopGrace); err != nil || d <= 0 {
				bad(at("stop_grace"), "Invalid stop grace period",
					fmt.Sprintf("%q must be a positive duration such as \"10s\" or \"1m\".", r.StopGrace), &decl)
			}
		}
	}
	return diags
}

func checkBind(bind string) error {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return fmt.Errorf("%q must be HOST:PORT, such as 127.0.0.1:4747", bind)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: host must be an IP address or localhost", bind)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", bind)
	}
	return nil
}

// MaxLogBytes returns max_log_size in bytes. Call it only on a validated
// config.
func (c *Config) MaxLogBytes() int64 {
	n, err := spec.ParseSize(c.MaxLogSize)
	if err != nil {
		n, _ = spec.ParseSize(DefaultLogSize)
	}
	return n
}

// NodeMemoryBytes returns node_memory in bytes, or 0 when it is not set.
// Call it only on a validated config.
func (c *Config) NodeMemoryBytes() int64 {
	if c.NodeMemory == "" {
		return 0
	}
	n, _ := spec.ParseSize(c.NodeMemory)
	return n
}

// StopGraceDuration returns the parsed stop grace period. Call it only on a
// validated config.
func (r *RuntimeConfig) StopGraceDuration() time.Duration {
	d, err := time.ParseDuration(r.StopGrace)
	if err != nil {
		d, _ = time.ParseDuration(DefaultStopGrace)
	}
	return d
}
