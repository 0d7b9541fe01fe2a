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
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	logger hclog.Logger
	dev    bool
	// mu guards plugins, which Reload changes.
	mu      sync.RWMutex
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
	want, err := h.declared(cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range want {
		h.plugins[p.name] = p
	}
	return h, nil
}

// declared returns the plugins that cfg declares or that its plugin_dir
// holds, ready to launch.
func (h *Host) declared(cfg *config.Config) (map[string]*plugin, error) {
	out := map[string]*plugin{}
	add := func(p *plugin) {
		p.host = h
		p.logger = h.logger.Named(p.name)
		p.state = api.PluginStarting
		p.removed = make(chan struct{})
		out[p.name] = p
	}
	for _, pc := range cfg.Plugins {
		conf, diags := pc.ConfigJSON()
		if diags.HasErrors() {
			return nil, fmt.Errorf("plugin %q: %s", pc.Name, config.FormatDiagnostics(diags))
		}
		path := pc.Path
		if path == "" {
			path = filepath.Join(cfg.PluginDir, ExecutablePrefix+pc.Name)
		}
		add(&plugin{name: pc.Name, path: path, sha256: strings.ToLower(pc.SHA256), args: pc.Args, config: conf,
			allow: pc.Allow, timeout: pc.ResolveTimeout(), where: pc.Where})
	}
	if cfg.PluginDir != "" {
		entries, err := os.ReadDir(cfg.PluginDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read plugin_dir: %w", err)
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), ExecutablePrefix)
			if !ok || e.IsDir() || out[name] != nil {
				continue
			}
			add(&plugin{name: name, path: filepath.Join(cfg.PluginDir, e.Name()), config: []byte("{}"),
				timeout: (&config.PluginConfig{}).ResolveTimeout()})
		}
	}
	return out, nil
}

// get returns the named plugin, or nil.
func (h *Host) get(name string) *plugin {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.plugins[name]
}

// Providers returns the names of the agent's provider plugins, sorted,
// whether they run now or not.
func (h *Host) Providers() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Sorted(maps.Keys(h.plugins))
}

// all returns every plugin, by name.
func (h *Host) all() []*plugin {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*plugin, 0, len(h.plugins))
	for _, p := range h.plugins {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Start launches every plugin and returns once each has started or failed.
// A plugin that fails is reported and retried in the background; the
// agent goes on either way.
func (h *Host) Start(ctx context.Context) {
	h.startAll(ctx, h.all())
}

// startAll launches ps, waits until each has started or failed, and
// watches each from then on.
func (h *Host) startAll(ctx context.Context, ps []*plugin) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.launch(ctx); err != nil {
				p.logger.Error("plugin failed to start", "error", err)
			}
		}()
	}
	wg.Wait()
	for _, p := range ps {
		h.wg.Add(1)
		go p.watch()
	}
}

// Reload makes the agent's plugins those that cfg declares, as on SIGHUP:
// a plugin whose block is unchanged runs on untouched; one whose block
// changed (its path, checksum, arguments, config, allow rules or timeout)
// is stopped and launched again as the block now says, which also gives a
// plugin that failed for good (a wrong checksum, a rejected config)
// another try; a plugin no longer declared is stopped; a new one is
// launched. Runs that have started have their values already and are not
// touched. It returns the names of the plugins it added, changed and
// removed.
func (h *Host) Reload(ctx context.Context, cfg *config.Config) (added, changed, removed []string, err error) {
	want, err := h.declared(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	var launch, stop []*plugin
	h.mu.Lock()
	for name, old := range h.plugins {
		p, ok := want[name]
		switch {
		case !ok:
			removed = append(removed, name)
			stop = append(stop, old)
			delete(h.plugins, name)
		case !old.sameBlock(p):
			changed = append(changed, name)
			stop = append(stop, old)
			h.plugins[name] = p
			launch = append(launch, p)
		}
	}
	for name, p := range want {
		if h.plugins[name] == nil {
			added = append(added, name)
			h.plugins[name] = p
			launch = append(launch, p)
		}
	}
	h.mu.Unlock()
	for _, p := range stop {
		close(p.removed)
		p.kill()
	}
	h.startAll(ctx, launch)
	sort.Strings(added)
	sort.Strings(changed)
	sort.Strings(removed)
	return added, changed, removed, nil
}

// Resolve asks the named provider for the values of refs, in one call.
func (h *Host) Resolve(ctx context.Context, name string, refs []string) ([]provider.Result, error) {
	p, err := h.find(name)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	results, err := p.resolve(ctx, refs)
	h.metrics.resolveSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		h.metrics.resolveErrors.WithLabelValues(name).Inc()
	}
	return results, err
}

// find returns the named plugin, or an ErrUnknownProvider error that lists
// the plugins the agent has.
func (h *Host) find(name string) (*plugin, error) {
	if p := h.get(name); p != nil {
		return p, nil
	}
	names := h.Providers()
	if len(names) == 0 {
		names = []string{"none"}
	}
	return nil, fmt.Errorf("%w %q on this agent (it has: %s)", ErrUnknownProvider, name, strings.Join(names, ", "))
}

// Status reports every plugin, by name.
func (h *Host) Status() []api.PluginStatus {
	ps := h.all()
	out := make([]api.PluginStatus, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.status())
	}
	return out
}

// Shutdown kills every plugin process and waits for the watchers.
func (h *Host) Shutdown() {
	h.stopped.Do(func() {
		close(h.stop)
		for _, p := range h.all() {
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
