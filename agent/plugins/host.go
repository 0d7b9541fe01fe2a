// Package plugins hosts the agent's secret-provider plugins: it finds them,
// launches each as its own process over go-plugin (gRPC only, AutoMTLS, a
// clean environment, a checked checksum), configures and health-checks
// them, restarts a crashed one with backoff, and kills them all with the
// agent. One broken plugin never stops the agent or the other plugins.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// ExecutablePrefix starts the name of every provider plugin executable.
const ExecutablePrefix = "hush-provider-"

// Timings, variables so that tests can shorten them.
var (
	// healthInterval is how often a running plugin is pinged.
	healthInterval = 2 * time.Second
	// callTimeout bounds GetInfo and Configure.
	callTimeout = 10 * time.Second
	// minBackoff and maxBackoff bound the wait before a restart.
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// ErrUnknownProvider is returned for a reference to a provider the agent
// does not have.
var ErrUnknownProvider = errors.New("no such provider plugin")

// Host runs the agent's plugins. It is safe for concurrent use.
type Host struct {
	logger  hclog.Logger
	dev     bool
	plugins map[string]*plugin
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	metrics *hostMetrics
}

// New prepares the plugins that cfg declares or that its plugin_dir holds.
// Nothing is launched until Start.
func New(cfg *config.Config, dev bool, logger hclog.Logger) (*Host, error) {
	h := &Host{logger: logger, dev: dev, plugins: map[string]*plugin{}, stop: make(chan struct{}), metrics: newHostMetrics()}
	for _, pc := range cfg.Plugins {
		conf, diags := pc.ConfigJSON()
		if diags.HasErrors() {
			return nil, fmt.Errorf("plugin %q: %s", pc.Name, config.FormatDiagnostics(diags))
		}
		path := pc.Path
		if path == "" {
			path = filepath.Join(cfg.PluginDir, ExecutablePrefix+pc.Name)
		}
		h.add(&plugin{name: pc.Name, path: path, sha256: strings.ToLower(pc.SHA256), args: pc.Args, config: conf,
			allow: pc.Allow, timeout: pc.ResolveTimeout()})
	}
	if cfg.PluginDir != "" {
		entries, err := os.ReadDir(cfg.PluginDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read plugin_dir: %w", err)
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), ExecutablePrefix)
			if !ok || e.IsDir() || h.plugins[name] != nil {
				continue
			}
			h.add(&plugin{name: name, path: filepath.Join(cfg.PluginDir, e.Name()), config: []byte("{}"),
				timeout: (&config.PluginConfig{}).ResolveTimeout()})
		}
	}
	return h, nil
}

func (h *Host) add(p *plugin) {
	p.host = h
	p.logger = h.logger.Named(p.name)
	p.state = api.PluginStarting
	h.plugins[p.name] = p
}

// Start launches every plugin and returns once each has started or failed.
// A plugin that fails is reported and retried in the background; the
// agent goes on either way.
func (h *Host) Start(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range h.plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.launch(ctx); err != nil {
				p.logger.Error("plugin failed to start", "error", err)
			}
		}()
	}
	wg.Wait()
	for _, p := range h.plugins {
		h.wg.Add(1)
		go p.watch()
	}
}

// Resolve asks the named provider for the values of refs, in one call.
func (h *Host) Resolve(ctx context.Context, name string, refs []string) ([]provider.Result, error) {
	p := h.plugins[name]
	if p == nil {
		return nil, fmt.Errorf("%w %q on this agent (it has: %s)", ErrUnknownProvider, name, strings.Join(h.names(), ", "))
	}
	start := time.Now()
	results, err := p.resolve(ctx, refs)
	h.metrics.resolveSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		h.metrics.resolveErrors.WithLabelValues(name).Inc()
	}
	return results, err
}

func (h *Host) names() []string {
	names := make([]string, 0, len(h.plugins))
	for n := range h.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// Status reports every plugin, by name.
func (h *Host) Status() []api.PluginStatus {
	out := make([]api.PluginStatus, 0, len(h.plugins))
	for _, n := range h.names() {
		if p := h.plugins[n]; p != nil {
			out = append(out, p.status())
		}
	}
	return out
}

// Shutdown kills every plugin process and waits for the watchers.
func (h *Host) Shutdown() {
	h.stopped.Do(func() {
		close(h.stop)
		for _, p := range h.plugins {
			p.kill()
		}
		h.wg.Wait()
	})
}

// backoff returns the wait before restart number n (from 1).
func backoff(n int) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}
