package plugins

import (
	"context"
	"errors"
	"fmt"

	"github.com/hush-sh/hush/sdk/api"
	"github.com/hush-sh/hush/sdk/provider"
)

// Validate asks the named provider whether ref is well formed, for a
// secret being created, and returns what it says is wrong with it, or ""
// when it takes it. A provider that does not validate references, or a
// plugin that is not running now, takes any: the reference is checked
// again when a run resolves it.
func (h *Host) Validate(ctx context.Context, name, ref string) (string, error) {
	p, err := h.find(name)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	prov, running := p.prov, p.state == api.PluginRunning
	p.mu.Unlock()
	v, ok := prov.(provider.Validator)
	if !running || !ok {
		return "", nil
	}
	vctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := v.Validate(vctx, &provider.ValidateRequest{References: []string{ref}})
	if errors.Is(err, provider.ErrUnimplemented) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("provider plugin %q: validate: %w", name, err)
	}
	return resp.Problems[0], nil
}
