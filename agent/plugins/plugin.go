package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// hostAPIVersions are the provider API versions this agent speaks.
var hostAPIVersions = []int{provider.APIVersion}

// plugin is one provider plugin and its process.
type plugin struct {
	host   *Host
	logger hclog.Logger
	name   string
	path   string
	sha256 string
	args   []string
	config []byte
	// allow says which references users may name; none means only
	// management tokens may.
	allow []*config.AllowConfig

	mu         sync.Mutex
	client     *goplugin.Client
	rpc        goplugin.ClientProtocol
	prov       provider.Provider
	state      api.PluginState
	err        string
	version    string
	apiVersion int
	restarts   int
	failures   int // consecutive failures, for the backoff
	nextTry    time.Time
	launched   bool
}

func (p *plugin) launch(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.launchLocked(ctx)
}

// launchLocked starts the process, negotiates the API version and hands
// the plugin its config. Callers hold p.mu.
func (p *plugin) launchLocked(ctx context.Context) error {
	p.killLocked()
	if p.launched {
		p.restarts++
	}
	p.launched = true
	if err := p.start(ctx); err != nil {
		p.killLocked()
		p.state, p.err = api.PluginFailed, err.Error()
		p.failures++
		p.nextTry = time.Now().Add(backoff(p.failures))
		return fmt.Errorf("plugin %q: %w", p.name, err)
	}
	p.state, p.err, p.failures = api.PluginRunning, "", 0
	p.logger.Info("plugin running", "path", p.path, "version", p.version, "api_version", p.apiVersion)
	return nil
}

func (p *plugin) start(ctx context.Context) error {
	actual, err := fileSHA256(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("executable %s does not exist: install the plugin there or fix its path", p.path)
	case err != nil:
		return fmt.Errorf("read executable: %w", err)
	case p.sha256 == "" && !p.host.dev:
		return fmt.Errorf("no sha256 for %s: outside -dev every plugin needs its checksum; add sha256 = %q to its plugin block if you trust this file", p.path, actual)
	case p.sha256 != "" && p.sha256 != actual:
		return fmt.Errorf("checksum mismatch: %s has sha256 %s, but its plugin block says %s; reinstall the plugin or update sha256", p.path, actual, p.sha256)
	}

	cmd := exec.Command(p.path, p.args...)
	// The kernel kills the plugin if the agent dies, even by SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  provider.Handshake,
		Plugins:          provider.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     callTimeout,
		Logger:           p.logger,
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
	}
	if p.sha256 != "" {
		sum, _ := hex.DecodeString(p.sha256)
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cfg)
	p.client = client
	rpc, err := client.Client()
	if err != nil {
		return fmt.Errorf("start %s: %w", p.path, err)
	}
	p.rpc = rpc
	raw, err := rpc.Dispense(provider.PluginName)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	prov, ok := raw.(provider.Provider)
	if !ok {
		return errors.New("the plugin does not serve the provider protocol")
	}

	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	info, err := prov.GetInfo(cctx, &provider.GetInfoRequest{})
	if err != nil {
		return fmt.Errorf("get info: %w", err)
	}
	version := negotiate(info.APIVersions)
	if version == 0 {
		return fmt.Errorf("the plugin speaks provider API versions %v and this agent speaks %v: upgrade whichever is older", info.APIVersions, hostAPIVersions)
	}
	if info.Name != p.name {
		p.logger.Warn("plugin calls itself by another name", "plugin_name", info.Name)
	}
	resp, err := prov.Configure(cctx, &provider.ConfigureRequest{APIVersion: version, Config: p.config})
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	var problems []string
	for _, d := range resp.Diagnostics {
		msg := d.Summary
		if d.Attribute != "" {
			msg = d.Attribute + ": " + msg
		}
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Severity == provider.SeverityError {
			problems = append(problems, msg)
		} else {
			p.logger.Warn("plugin config", "warning", msg)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("bad config: %s", strings.Join(problems, "; "))
	}
	p.prov, p.version, p.apiVersion = prov, info.Version, version
	return nil
}

// negotiate picks the highest API version both sides speak, or 0.
func negotiate(theirs []int) int {
	best := 0
	for _, v := range theirs {
		if slices.Contains(hostAPIVersions, v) && v > best {
			best = v
		}
	}
	return best
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// watch health-checks the plugin and restarts it with backoff when it has
// died or failed, until the host stops.
func (p *plugin) watch() {
	defer p.host.wg.Done()
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.host.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		p.checkLocked()
		if p.state == api.PluginFailed && !time.Now().Before(p.nextTry) {
			if err := p.launchLocked(context.Background()); err != nil {
				p.logger.Error("plugin restart failed", "error", err, "next_try", p.nextTry.Format(time.TimeOnly))
			}
		}
		p.mu.Unlock()
	}
}

// checkLocked marks a running plugin failed when its process is gone or
// does not answer. Callers hold p.mu.
func (p *plugin) checkLocked() {
	if p.state != api.PluginRunning {
		return
	}
	var why string
	switch {
	case p.client.Exited():
		why = "the plugin process exited"
	case p.rpc.Ping() != nil:
		why = "the plugin does not answer"
	default:
		return
	}
	p.logger.Error("plugin is down; restarting it", "reason", why)
	p.killLocked()
	// A plugin that was running is restarted at once; repeated failures
	// back off from launchLocked.
	p.state, p.err = api.PluginFailed, why
	p.nextTry = time.Now()
}

// resolve calls the plugin, first restarting it if it is down and its
// backoff has passed.
func (p *plugin) resolve(ctx context.Context, refs []string) ([]provider.Result, error) {
	p.mu.Lock()
	p.checkLocked()
	if p.state != api.PluginRunning && !time.Now().Before(p.nextTry) {
		if err := p.launchLocked(ctx); err != nil {
			p.logger.Error("plugin restart failed", "error", err)
		}
	}
	if p.state != api.PluginRunning {
		err := fmt.Errorf("provider plugin %q is not running: %s", p.name, p.err)
		p.mu.Unlock()
		return nil, err
	}
	prov := p.prov
	p.mu.Unlock()

	resp, err := prov.Resolve(ctx, &provider.ResolveRequest{References: refs})
	if err != nil {
		return nil, fmt.Errorf("provider plugin %q: %w", p.name, err)
	}
	if len(resp.Results) != len(refs) {
		return nil, fmt.Errorf("provider plugin %q answered %d results for %d references", p.name, len(resp.Results), len(refs))
	}
	return resp.Results, nil
}

func (p *plugin) status() api.PluginStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return api.PluginStatus{
		Name: p.name, Version: p.version, Path: p.path, State: p.state,
		APIVersion: p.apiVersion, Restarts: p.restarts, Error: p.err,
	}
}

func (p *plugin) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
	p.state = api.PluginStopped
}

func (p *plugin) killLocked() {
	if p.client != nil {
		p.client.Kill()
		p.client, p.rpc, p.prov = nil, nil, nil
	}
}
