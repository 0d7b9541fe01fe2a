package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/diag"
)

// version is the plugin's own version, reported in GetInfo.
const version = "0.1.0"

// config is the plugin's config block. Exactly one source is set.
type config struct {
	// Dir is a directory holding one file per secret; a reference is a
	// file name relative to it. The only mode that can store values.
	Dir string `json:"dir"`
	// Dotenv is a file of KEY=VALUE lines; a reference is a KEY.
	Dotenv string `json:"dotenv"`
	// JSON is a file holding a JSON object; a reference is a top-level key
	// or a dotted path into nested objects and arrays.
	JSON string `json:"json"`
}

// fileProvider reads secrets from files on the plugin's host.
type fileProvider struct {
	mu  sync.RWMutex
	src source // nil until configured
}

var (
	_ provider.Provider = (*fileProvider)(nil)
	_ provider.Storer   = (*fileProvider)(nil)
)

func newProvider() *fileProvider { return &fileProvider{} }

// source is where a configured provider reads values from. Each resolve
// reads its file (or opens its directory) once for the whole batch, so a
// changed file is seen by the next batch without a restart.
type source interface {
	resolve(refs []string) []provider.Result
}

// GetInfo describes the plugin. Only dir mode can store, but the host asks
// before it sends the config, so an unconfigured plugin lists
// CapabilityStore as something it may be able to do; once configured, it
// lists it only in dir mode. In the other modes Put and Delete answer
// ErrUnimplemented, which the host takes as "cannot store".
func (p *fileProvider) GetInfo(context.Context, *provider.GetInfoRequest) (*provider.GetInfoResponse, error) {
	info := &provider.GetInfoResponse{Name: "file", Version: version, APIVersions: []int{provider.APIVersion}}
	switch p.source().(type) {
	case nil, *dirSource:
		info.Capabilities = []string{provider.CapabilityStore}
	}
	return info, nil
}

// Configure checks that exactly one of dir, dotenv and json is set, that
// its path is absolute, and that the file or directory is there and, for
// dotenv and json, parses.
func (p *fileProvider) Configure(_ context.Context, req *provider.ConfigureRequest) (*provider.ConfigureResponse, error) {
	var cfg config
	if diags := diag.Decode(req, &cfg); diags != nil {
		return &provider.ConfigureResponse{Diagnostics: diags}, nil
	}
	src, diags := cfg.source()
	if !diag.HasErrors(diags) {
		p.mu.Lock()
		p.src = src
		p.mu.Unlock()
	}
	return &provider.ConfigureResponse{Diagnostics: diags}, nil
}

// source validates the config and builds its source.
func (c *config) source() (source, []provider.Diagnostic) {
	var set []string
	for _, s := range []struct{ attr, val string }{{"dir", c.Dir}, {"dotenv", c.Dotenv}, {"json", c.JSON}} {
		if s.val != "" {
			set = append(set, s.attr)
		}
	}
	switch {
	case len(set) == 0:
		return nil, []provider.Diagnostic{diag.Error("", "set one of dir, dotenv or json",
			`dir = "/run/secrets" reads one file per secret; dotenv = "/etc/app.env" reads KEY=VALUE lines; json = "/etc/app.json" reads keys of a JSON object`)}
	case len(set) > 1:
		var diags []provider.Diagnostic
		for _, attr := range set[1:] {
			diags = append(diags, diag.Error(attr, fmt.Sprintf("%s cannot be set together with %s", attr, set[0]), "set only one of dir, dotenv or json"))
		}
		return nil, diags
	}

	attr := set[0]
	path := map[string]string{"dir": c.Dir, "dotenv": c.Dotenv, "json": c.JSON}[attr]
	if diags := diag.AbsPath(attr, path); diags != nil {
		return nil, diags
	}
	if attr == "dir" {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return nil, []provider.Diagnostic{statDiag(attr, path, err)}
		case !fi.IsDir():
			return nil, []provider.Diagnostic{diag.Error(attr, fmt.Sprintf("dir %s is not a directory", path), "to read one file, use dotenv or json")}
		}
		return &dirSource{dir: path}, nil
	}

	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []provider.Diagnostic{statDiag(attr, path, err)}
	}
	var src source
	if attr == "dotenv" {
		_, err = parseDotenv(data)
		src = &dotenvSource{path: path}
	} else {
		_, err = parseJSON(data)
		src = &jsonSource{path: path}
	}
	if err != nil {
		return nil, []provider.Diagnostic{diag.Error(attr, fmt.Sprintf("%s %s does not parse", attr, path), err.Error())}
	}
	return src, nil
}

// statDiag explains why a configured path cannot be used.
func statDiag(attr, path string, err error) provider.Diagnostic {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return diag.Error(attr, fmt.Sprintf("%s %s does not exist", attr, path), "create it or fix the path")
	case errors.Is(err, os.ErrPermission):
		return diag.Error(attr, fmt.Sprintf("%s %s is not readable by the plugin", attr, path), "the plugin runs as the agent's user; grant it read access")
	default:
		return diag.Error(attr, fmt.Sprintf("%s %s cannot be read", attr, path), err.Error())
	}
}

// Resolve reads each reference from the configured source.
func (p *fileProvider) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	src := p.source()
	if src == nil {
		return nil, errNotConfigured
	}
	return &provider.ResolveResponse{Results: src.resolve(req.References)}, nil
}

// Put writes a value to a file in dir, atomically and with mode 0600.
// Other modes answer ErrUnimplemented.
func (p *fileProvider) Put(_ context.Context, req *provider.PutRequest) (*provider.PutResponse, error) {
	dir, err := p.dirSource("put")
	if err != nil {
		return nil, err
	}
	if err := dir.put(req.Reference, req.Value); err != nil {
		return nil, err
	}
	return &provider.PutResponse{}, nil
}

// Delete removes a file from dir. Other modes answer ErrUnimplemented.
func (p *fileProvider) Delete(_ context.Context, req *provider.DeleteRequest) (*provider.DeleteResponse, error) {
	dir, err := p.dirSource("delete")
	if err != nil {
		return nil, err
	}
	if err := dir.delete(req.Reference); err != nil {
		return nil, err
	}
	return &provider.DeleteResponse{}, nil
}

var errNotConfigured = errors.New("the file provider is not configured: the host must call Configure first")

func (p *fileProvider) source() source {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.src
}

// dirSource returns the configured dir source, or why op cannot be done.
func (p *fileProvider) dirSource(op string) (*dirSource, error) {
	switch src := p.source().(type) {
	case nil:
		return nil, errNotConfigured
	case *dirSource:
		return src, nil
	default:
		return nil, fmt.Errorf("%s: the file provider stores values only when configured with dir: %w", op, provider.ErrUnimplemented)
	}
}
