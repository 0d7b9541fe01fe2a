package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

const (
	// version is the plugin's own version, reported in GetInfo.
	version = "0.1.0"
	// parallel is how many commands one batch runs at once.
	parallel = 4
	// maxValue bounds a command's output, which is held in memory.
	maxValue = 1 << 20
	// maxStderr is how much of stderr is kept for error messages.
	maxStderr = 4 << 10
	// maxErrorLine bounds the stderr line quoted in an error.
	maxErrorLine = 200
)

// execProvider resolves a reference by running a command and taking its
// output, for secret managers that ship a CLI rather than an API.
type execProvider struct {
	mu  sync.RWMutex
	cfg *settings // nil until configured
}

var _ provider.Provider = (*execProvider)(nil)

func newProvider() *execProvider { return &execProvider{} }

// GetInfo describes the plugin. It cannot store values.
func (p *execProvider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	return &provider.GetInfoResponse{Name: "exec", Version: version, APIVersions: []int{provider.APIVersion}}, nil
}

// Configure validates the command, finds its executable and keeps the
// settings.
func (p *execProvider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg config
	if diags := diag.Decode(req, &cfg); diags != nil {
		return &provider.ConfigureResponse{Diagnostics: diags}, nil
	}
	s, diags := cfg.validate()
	if !diag.HasErrors(diags) {
		p.mu.Lock()
		p.cfg = s
		p.mu.Unlock()
	}
	return &provider.ConfigureResponse{Diagnostics: diags}, nil
}

// Resolve runs the command once for each distinct reference, a few at a
// time.
func (p *execProvider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	s := p.cfg
	p.mu.RUnlock()
	if s == nil {
		return nil, errors.New("the exec provider is not configured: the host must call Configure first")
	}

	type outcome struct {
		value []byte
		err   error
	}
	distinct := map[string]*outcome{}
	for _, ref := range req.References {
		distinct[ref] = &outcome{}
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for ref, o := range distinct {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o.value, o.err = s.run(ctx, ref)
		}()
	}
	wg.Wait()

	results := make([]provider.Result, len(req.References))
	for i, ref := range req.References {
		o := distinct[ref]
		results[i] = provider.Result{Reference: ref, Value: slices.Clone(o.value), Err: o.err}
	}
	return &provider.ResolveResponse{Results: results}, nil
}

// run runs the command for one reference and returns its output.
func (s *settings) run(ctx context.Context, ref string) ([]byte, error) {
	argv, err := s.args(ref)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(argv[0])
	runCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	cmd := exec.CommandContext(runCtx, s.path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = s.env
	cmd.Dir = "/"
	stdout := &capped{max: maxValue}
	stderr := &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so that a timeout kills whatever the command
	// started too; WaitDelay stops a grandchild that holds the pipes open
	// from holding up the batch.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second

	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("run %s: %w", name, ctx.Err())
	case err != nil && runCtx.Err() != nil:
		return nil, fmt.Errorf("run %s: timed out after %s; raise timeout if the command is slow", name, s.timeout)
	case errors.As(err, &exitErr):
		return nil, s.exitError(name, exitErr, stderr.buf.Bytes())
	case err != nil:
		return nil, fmt.Errorf("run %s: %w", name, err)
	case stdout.over:
		return nil, fmt.Errorf("run %s: its output is larger than %d bytes", name, maxValue)
	}
	out := stdout.buf.Bytes()
	if s.trim {
		out = bytes.TrimSuffix(out, []byte("\n"))
		out = bytes.TrimSuffix(out, []byte("\r"))
	}
	return out, nil
}

// args substitutes ref into the command.
func (s *settings) args(ref string) ([]string, error) {
	switch {
	case ref == "":
		return nil, errors.New("reference is empty")
	case strings.ContainsRune(ref, 0):
		return nil, errors.New("reference contains a NUL byte")
	}
	argv := slices.Clone(s.argv)
	for i := 1; i < len(argv); i++ {
		if strings.HasPrefix(argv[i], placeholder) && strings.HasPrefix(ref, "-") {
			// The command would take the reference for an option.
			return nil, fmt.Errorf("reference %q starts with \"-\", which the command would read as an option", ref)
		}
		argv[i] = strings.ReplaceAll(argv[i], placeholder, ref)
	}
	return argv, nil
}

// exitError explains a non-zero exit, mapping the configured exit codes
// to ErrNotFound and ErrPermissionDenied.
func (s *settings) exitError(name string, exitErr *exec.ExitError, stderr []byte) error {
	code := exitErr.ExitCode()
	msg := fmt.Sprintf("%s exited with status %d", name, code)
	if code < 0 {
		msg = fmt.Sprintf("%s was killed: %s", name, exitErr.ProcessState)
	}
	if line := firstLine(stderr); line != "" {
		msg += ": " + line
	}
	switch {
	case slices.Contains(s.notFound, code):
		return fmt.Errorf("%s: %w", msg, provider.ErrNotFound)
	case slices.Contains(s.denied, code):
		return fmt.Errorf("%s: %w", msg, provider.ErrPermissionDenied)
	}
	return errors.New(msg)
}

// firstLine is the first non-blank line of stderr, cut short if long.
func firstLine(stderr []byte) string {
	for line := range strings.Lines(string(stderr)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if r := []rune(line); len(r) > maxErrorLine {
			line = string(r[:maxErrorLine]) + "…"
		}
		return line
	}
	return ""
}

// capped keeps the first max bytes written to it and notes whether more
// came. It keeps accepting writes, so that the command is not stopped by
// a broken pipe before it exits.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if len(p) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}
