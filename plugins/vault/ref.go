package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hush-sh/hush/sdk/provider"
)

var errRefFormat = errors.New("reference must be PATH#KEY, like secret/data/db#password")

// parseRef splits a reference into the API path to read and the key to
// take from it. For KV version 2 the path may leave out the "data/" that
// follows the mount: "secret/db" reads secret/data/db. The mount is taken
// to be the first segment, since telling otherwise would need a read of
// sys/mounts that most tokens may not do; KV v2 mounts at deeper paths
// are therefore not supported.
func parseRef(ref string, kvVersion int) (path, key string, err error) {
	path, key, ok := strings.Cut(ref, "#")
	path = strings.Trim(path, "/")
	if !ok || path == "" || key == "" {
		return "", "", errRefFormat
	}
	segments := strings.Split(path, "/")
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return "", "", fmt.Errorf("reference path %q has an empty, \".\" or \"..\" segment", path)
		}
	}
	if kvVersion == 2 {
		if len(segments) < 2 {
			return "", "", fmt.Errorf("reference path %q must be MOUNT/PATH, like secret/db", path)
		}
		if segments[1] != "data" || len(segments) == 2 {
			path = segments[0] + "/data/" + strings.Join(segments[1:], "/")
		}
	}
	return path, key, nil
}

// Validate says, for each reference, what is wrong with its form, without
// asking Vault: a secret holding a malformed one is refused at create.
func (p *vaultProvider) Validate(ctx context.Context, req *provider.ValidateRequest) (*provider.ValidateResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	s := p.cfg
	p.mu.RUnlock()
	kv := 2
	if s != nil {
		kv = s.kvVersion
	}
	out := &provider.ValidateResponse{Problems: make([]string, len(req.References))}
	for i, ref := range req.References {
		if _, _, err := parseRef(ref, kv); err != nil {
			out.Problems[i] = err.Error()
		}
	}
	return out, nil
}
