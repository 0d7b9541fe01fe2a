package plugins

import (
	"bytes"
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
//
// p.mu guards the fields below it and is never held across a launch, a
// health check or a kill, each of which may wait seconds on the plugin:
// Status must answer at once whatever a plugin is doing.
type plugin struct {
	host   *Host
	logger hclog.Logger
	name   string
	path   string
	sha256 string
	args   []string
	config []byte
	// timeout bounds each Resolve call.
	timeout time.Duration
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
	// launching is closed when the launch in progress ends; nil when
	// there is none.
	launching chan struct{}
	// permanent says the last launch failed in a way that launching again
	// cannot fix, so the plugin is not launched again.
	permanent bool
	// stopped is set by kill: nothing launches the plugin again, and a
	// launch in progress kills what it started.
	stopped bool
	// removed is closed when a reload takes the plugin out: its watcher
	// ends.
	removed chan struct{}
	// where says where the plugin's block sets a config attribute,
	// FILE:LINE:COL, for its diagnostics; nil for a plugin of plugin_dir
	// that no block declares.
	where func(attr string) string
}

// sameBlock reports whether q is declared as p is: a reload leaves p
// running then.
func (p *plugin) sameBlock(q *plugin) bool {
	return p.path == q.path && p.sha256 == q.sha256 && slices.Equal(p.args, q.args) && bytes.Equal(p.config, q.config) &&
		p.timeout == q.timeout && slices.EqualFunc(p.allow, q.allow, func(a, b *config.AllowConfig) bool { return a.Meaning() == b.Meaning() })
}

// permanentError is a launch failure that only a change to the plugin
// block or the executable fixes: a wrong checksum, no common API version,
// a config the plugin rejects.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanentHint ends the error of a plugin that failed for good, saying how
// to get it back.
const permanentHint = "the agent does not launch it again: fix the plugin block (or the plugin), then send the agent SIGHUP"

// conn is what a launch produced: a process and, once it is ready, its
// provider.
type conn struct {
	client     *goplugin.Client
	rpc        goplugin.ClientProtocol
	prov       provider.Provider
	version    string
	apiVersion int
}

// launch starts the plugin's process, negotiates the API version and hands
// the plugin its config, replacing a process it had. When another launch
// is in progress it waits for that one instead (or for ctx).
func (p *plugin) launch(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return fmt.Errorf("plugin %q: the agent is shutting down", p.name)
	}
	if done := p.launching; done != nil {
		p.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("plugin %q: wait for it to start: %w", p.name, ctx.Err())
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.state != api.PluginRunning {
			return fmt.Errorf("plugin %q: %s", p.name, p.err)
		}
		return nil
	}
	old := p.detachLocked()
	if p.launched {
		p.restarts++
	}
	p.launched = true
	p.state, p.err = api.PluginStarting, ""
	done := make(chan struct{})
	p.launching = done
	p.mu.Unlock()

	if old != nil {
		old.Kill()
	}
	c, err := p.start(ctx)

	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(done)
	p.launching = nil
	if p.stopped || err != nil {
		if c != nil && c.client != nil {
			// Kill only ever waits on a process that has started, and
			// this one is ours alone: no caller can reach it yet.
			c.client.Kill()
		}
	}
	if p.stopped {
		p.state = api.PluginStopped
		return fmt.Errorf("plugin %q: the agent is shutting down", p.name)
	}
	if err != nil {
		p.state, p.err = api.PluginFailed, err.Error()
		if perm := (*permanentError)(nil); errors.As(err, &perm) {
			p.permanent = true
			p.err += "; " + permanentHint
			return fmt.Errorf("plugin %q: %w; %s", p.name, err, permanentHint)
		}
		p.failures++
		p.nextTry = time.Now().Add(backoff(p.failures))
		return fmt.Errorf("plugin %q: %w", p.name, err)
	}
	p.client, p.rpc, p.prov, p.version, p.apiVersion = c.client, c.rpc, c.prov, c.version, c.apiVersion
	p.state, p.err, p.failures = api.PluginRunning, "", 0
	p.logger.Info("plugin running", "path", p.path, "version", p.version, "api_version", p.apiVersion)
	return nil
}

// dueLocked reports whether the plugin should be launched now: it is not
// running, may be launched again, and its backoff has passed. Callers
// hold p.mu.
func (p *plugin) dueLocked() bool {
	return p.state != api.PluginRunning && p.launching == nil && !p.permanent && !p.stopped &&
		!time.Now().Before(p.nextTry)
}

// start launches the process and readies its provider. The conn it
// returns holds whatever process it started, even with an error, for the
// caller to kill.
func (p *plugin) start(ctx context.Context) (*conn, error) {
	actual, err := FileSHA256(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("executable %s does not exist: install the plugin there or fix its path", p.path)
	case err != nil:
		return nil, fmt.Errorf("read executable: %w", err)
	case p.sha256 == "" && !p.host.dev:
		return nil, &permanentError{fmt.Errorf("no sha256 for %s: outside -dev every plugin needs its checksum; add sha256 = %q to its plugin block if you trust this file", p.path, actual)}
	case p.sha256 != "" && p.sha256 != actual:
		return nil, &permanentError{fmt.Errorf("checksum mismatch: %s has sha256 %s, but its plugin block says %s; reinstall the plugin or update sha256", p.path, actual, p.sha256)}
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
		// What the plugin writes besides its log lines is kept, at INFO:
		// its raw stderr, and what it writes to stdout and stderr once
		// go-plugin has redirected them.
		Stderr:     newLineLogger(p.logger.Named("stderr"), true),
		SyncStdout: newLineLogger(p.logger.Named("stdout"), false),
		SyncStderr: newLineLogger(p.logger.Named("stderr"), false),
	}
	if p.sha256 != "" {
		sum, _ := hex.DecodeString(p.sha256)
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	c := &conn{client: goplugin.NewClient(cfg)}
	rpc, err := c.client.Client()
	if err != nil {
		return c, fmt.Errorf("start %s: %w", p.path, err)
	}
	c.rpc = rpc
	raw, err := rpc.Dispense(provider.PluginName)
	if err != nil {
		return c, fmt.Errorf("connect: %w", err)
	}
	prov, ok := raw.(provider.Provider)
	if !ok {
		return c, errors.New("the plugin does not serve the provider protocol")
	}

	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	info, err := prov.GetInfo(cctx, &provider.GetInfoRequest{})
	if err != nil {
		return c, fmt.Errorf("get info: %w", err)
	}
	version := negotiate(info.APIVersions)
	if version == 0 {
		return c, &permanentError{fmt.Errorf("the plugin speaks provider API versions %v and this agent speaks %v: upgrade whichever is older", info.APIVersions, hostAPIVersions)}
	}
	if info.Name != p.name {
		p.logger.Warn("plugin calls itself by another name", "plugin_name", info.Name)
	}
	resp, err := prov.Configure(cctx, &provider.ConfigureRequest{APIVersion: version, Config: p.config})
	if err != nil {
		return c, fmt.Errorf("configure: %w", err)
	}
	var problems []string
	for _, d := range resp.Diagnostics {
		msg := d.Summary
		if d.Attribute != "" {
			msg = d.Attribute + ": " + msg
		}
		if p.where != nil {
			if at := p.where(d.Attribute); at != "" {
				msg = at + ": " + msg
			}
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
		return c, &permanentError{fmt.Errorf("bad config: %s", strings.Join(problems, "; "))}
	}
	c.prov, c.version, c.apiVersion = prov, info.Version, version
	return c, nil
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

// FileSHA256 returns the SHA-256 of the file at path, in hex, as a plugin
// block's sha256 gives it.
func FileSHA256(path string) (string, error) {
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
// died or failed, until the host stops. A plugin that failed for good is
// left alone.
func (p *plugin) watch() {
	defer p.host.wg.Done()
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.host.stop:
			return
		case <-p.removed:
			return
		case <-t.C:
		}
		p.check()
		p.mu.Lock()
		due := p.dueLocked()
		p.mu.Unlock()
		if !due {
			continue
		}
		if err := p.launch(context.Background()); err != nil {
			p.mu.Lock()
			next := p.nextTry
			p.mu.Unlock()
			p.logger.Error("plugin restart failed", "error", err, "next_try", next.Format(time.TimeOnly))
		}
	}
}

// check marks a running plugin failed, and kills its process, when the
// process is gone or does not answer. It pings without p.mu held, as a
// hung plugin may take long to answer.
func (p *plugin) check() {
	p.mu.Lock()
	if p.state != api.PluginRunning {
		p.mu.Unlock()
		return
	}
	client, rpc := p.client, p.rpc
	p.mu.Unlock()

	var why string
	switch {
	case client.Exited():
		why = "the plugin process exited"
	case rpc.Ping() != nil:
		why = "the plugin does not answer"
	default:
		return
	}
	p.mu.Lock()
	if p.client != client {
		// Relaunched or killed meanwhile: what we checked is gone.
		p.mu.Unlock()
		return
	}
	p.detachLocked()
	// A plugin that was running is restarted at once; repeated failures
	// back off from launch.
	p.state, p.err = api.PluginFailed, why
	p.nextTry = time.Now()
	p.mu.Unlock()
	p.logger.Error("plugin is down; restarting it", "reason", why)
	client.Kill()
}

// resolve calls the plugin, bounded by its timeout, first restarting it if
// it is down and its backoff has passed, or waiting for a launch in
// progress.
func (p *plugin) resolve(ctx context.Context, refs []string) ([]provider.Result, error) {
	p.check()
	p.mu.Lock()
	due, starting := p.dueLocked(), p.launching != nil
	p.mu.Unlock()
	if due || starting {
		if err := p.launch(ctx); err != nil && due {
			p.logger.Error("plugin restart failed", "error", err)
		}
	}
	p.mu.Lock()
	if p.state != api.PluginRunning {
		why := p.err
		if why == "" {
			why = "it is " + string(p.state)
		}
		p.mu.Unlock()
		return nil, fmt.Errorf("provider plugin %q is not running: %s", p.name, why)
	}
	prov := p.prov
	p.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := prov.Resolve(rctx, &provider.ResolveRequest{References: refs})
	if err != nil {
		if timedOut(ctx, rctx) {
			return nil, fmt.Errorf("provider plugin %q did not answer within %s: raise timeout in its plugin block if its store is that slow: %w", p.name, p.timeout, err)
		}
		return nil, fmt.Errorf("provider plugin %q: %w", p.name, err)
	}
	if len(resp.Results) != len(refs) {
		return nil, fmt.Errorf("provider plugin %q answered %d results for %d references", p.name, len(resp.Results), len(refs))
	}
	return resp.Results, nil
}

// deadlineSlack is how early before our deadline a failed call still
// counts as timed out: gRPC sends the plugin our deadline, and the plugin
// may give up on it, and answer so, a moment before our own timer fires.
const deadlineSlack = 100 * time.Millisecond

// timedOut reports whether a call made with rctx, derived from ctx with the
// plugin's timeout, failed for that timeout rather than for ctx's.
func timedOut(ctx, rctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	ours, _ := rctx.Deadline()
	if theirs, ok := ctx.Deadline(); ok && !theirs.After(ours) {
		return false
	}
	return rctx.Err() != nil || time.Until(ours) < deadlineSlack
}

func (p *plugin) status() api.PluginStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return api.PluginStatus{
		Name: p.name, Version: p.version, Path: p.path, State: p.state,
		APIVersion: p.apiVersion, Restarts: p.restarts, Error: p.err,
	}
}

// kill stops the plugin for good: it kills the process and waits for a
// launch in progress to end, which kills what it started.
func (p *plugin) kill() {
	p.mu.Lock()
	p.stopped = true
	client := p.detachLocked()
	p.state = api.PluginStopped
	done := p.launching
	p.mu.Unlock()
	if client != nil {
		client.Kill()
	}
	if done != nil {
		<-done
	}
}

// detachLocked forgets the plugin's process and returns it, for the caller
// to kill once it has let go of p.mu. Callers hold p.mu.
func (p *plugin) detachLocked() *goplugin.Client {
	client := p.client
	p.client, p.rpc, p.prov = nil, nil, nil
	return client
}
