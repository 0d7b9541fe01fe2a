package config

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// DefaultPluginTimeout bounds each Resolve call to a plugin whose block sets
// no timeout.
const DefaultPluginTimeout = "30s"

// minPluginTimeout is the shortest timeout a plugin block may set: below it
// a plugin that asks a remote store would fail on an ordinary slow answer.
const minPluginTimeout = time.Second

// ResolveTimeout returns the plugin's timeout, its default filled in. Call
// it only on a validated config.
func (p *PluginConfig) ResolveTimeout() time.Duration {
	v := p.Timeout
	if v == "" {
		v = DefaultPluginTimeout
	}
	d, _ := time.ParseDuration(v)
	return d
}

// validateTimeout checks the timeout attribute, if set.
func (p *PluginConfig) validateTimeout(bad func(key, summary, detail string, fallback *hcl.Range)) {
	if p.Timeout == "" {
		return
	}
	if d, err := time.ParseDuration(p.Timeout); err != nil || d < minPluginTimeout {
		decl := p.DeclRange
		bad("plugin."+p.Name+".timeout", "Invalid plugin timeout",
			fmt.Sprintf("plugin %q: %q: give how long one Resolve call may take, at least \"1s\", such as %q.",
				p.Name, p.Timeout, DefaultPluginTimeout), &decl)
	}
}

// ConfigJSON renders the plugin's config block as a JSON object, the form
// the provider protocol carries. Nested settings are written as objects
// (approle = { role_id = "..." }); the block itself holds only attributes.
func (p *PluginConfig) ConfigJSON() ([]byte, hcl.Diagnostics) {
	if p.Config == nil || p.Config.Body == nil {
		return []byte("{}"), nil
	}
	attrs, diags := p.Config.Body.JustAttributes()
	if diags.HasErrors() {
		return nil, diags
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	obj := map[string]json.RawMessage{}
	for _, n := range names {
		attr := attrs[n]
		v, d := attr.Expr.Value(nil)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		b, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid plugin setting",
				Detail:   fmt.Sprintf("plugin %q: %s cannot be sent to the plugin: %v", p.Name, n, err),
				Subject:  attr.Expr.Range().Ptr(),
			})
			continue
		}
		obj[n] = b
	}
	if diags.HasErrors() {
		return nil, diags
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid plugin config", Detail: err.Error()}}
	}
	return out, nil
}

// Where returns where, in the agent's config files, the plugin's config
// names attr, a setting as a plugin's diagnostic names it ("address", or
// "approle.role_id" inside an object): FILE:LINE:COL of that attribute of
// the config block, or of the plugin block when the config block does not
// set it (a setting the plugin requires), or "" for a plugin that no block
// declares.
func (p *PluginConfig) Where(attr string) string {
	r := p.DeclRange
	if p.Config != nil && p.Config.Body != nil {
		top, _, _ := strings.Cut(attr, ".")
		top, _, _ = strings.Cut(top, "[")
		if attrs, diags := p.Config.Body.JustAttributes(); !diags.HasErrors() && top != "" {
			if a, ok := attrs[top]; ok {
				r = a.Range
			}
		}
	}
	if r.Filename == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
