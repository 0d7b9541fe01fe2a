package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// AnyUser in an allow block's users stands for every user.
const AnyUser = "*"

// RefPatterns returns the allow block's reference patterns for user, with
// ${user} replaced by the user's name.
func (a *AllowConfig) RefPatterns(user string) ([]string, hcl.Diagnostics) {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"user": cty.StringVal(user)}}
	return stringList(a.Refs, ctx, "refs", `["${user}/*"]`)
}

// Names reports whether the allow block names user.
func (a *AllowConfig) Names(user string) bool {
	return slices.Contains(a.users, AnyUser) || slices.Contains(a.users, user)
}

// stringList evaluates an attribute that must be a list of strings.
func stringList(e hcl.Expression, ctx *hcl.EvalContext, attr, example string) ([]string, hcl.Diagnostics) {
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	var out []string
	list, err := convert.Convert(v, cty.List(cty.String))
	if err == nil && list.IsWhollyKnown() && !list.IsNull() {
		err = gocty.FromCtyValue(list, &out)
	}
	if err != nil || list.IsNull() {
		r := e.Range()
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid allow " + attr,
			Detail:   fmt.Sprintf("%s must be a list of strings, such as %s.", attr, example),
			Subject:  &r,
		}}
	}
	return out, nil
}

// validateAllow checks a plugin's allow blocks and records their users.
func validateAllow(p *PluginConfig) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, a := range p.Allow {
		users, d := stringList(a.Users, nil, "users", `["*"] or ["alice", "bob"]`)
		diags = append(diags, d...)
		ur := a.Users.Range()
		if !d.HasErrors() && len(users) == 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Empty allow users",
				Detail:   fmt.Sprintf(`plugin %q: an allow block names the users it is for, or "*" for everyone.`, p.Name),
				Subject:  &ur,
			})
		}
		for _, u := range users {
			if u != AnyUser && api.ValidateUserName(u) != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid allow user",
					Detail:   fmt.Sprintf(`plugin %q: %q is not a user name; use lowercase letters, digits, '.', '_' and '-', or "*" for everyone.`, p.Name, u),
					Subject:  &ur,
				})
			}
		}
		a.users = users
		// Any name stands in for ${user}: the check is that the patterns
		// are strings and use no other variable.
		refs, d := a.RefPatterns("user")
		diags = append(diags, d...)
		for _, ref := range refs {
			if strings.TrimSpace(ref) == "" {
				r := a.Refs.Range()
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Empty allow pattern",
					Detail:   fmt.Sprintf(`plugin %q: a reference pattern is empty; write one such as "${user}/*", or "*" for any reference.`, p.Name),
					Subject:  &r,
				})
			}
		}
	}
	return diags
}

// Meaning renders what the allow block allows, whatever file and line it
// was written at: two blocks with the same meaning allow the same.
func (a *AllowConfig) Meaning() string {
	// A name no user can have stands for ${user} in the patterns.
	refs, _ := a.RefPatterns("\x00user")
	return strings.Join(a.users, "\x01") + "\x02" + strings.Join(refs, "\x01")
}
