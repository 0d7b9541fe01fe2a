package plugins

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNotAllowed is returned for a provider reference that a user may not
// name.
var ErrNotAllowed = errors.New("reference not allowed")

// CheckReference reports whether user may name ref of the named provider,
// by the allow blocks of its plugin: nil when one of the patterns they
// give user matches ref. A provider without allow blocks is for management
// tokens only, which callers do not check. A provider this agent does not
// have is not this check's business: resolving it fails anyway.
func (h *Host) CheckReference(user, provider, ref string) error {
	p := h.get(provider)
	if p == nil {
		return nil
	}
	if len(p.allow) == 0 {
		return fmt.Errorf("%w: provider %s is for management tokens only, as its plugin block has no allow rules; ask your operator to add one, such as allow { users = [\"*\"] refs = [\"${user}/*\"] }",
			ErrNotAllowed, provider)
	}
	if slices.Contains(strings.Split(ref, "/"), "..") {
		return fmt.Errorf("%w: reference %s:%s has a \"..\" segment; name what you mean without one", ErrNotAllowed, provider, ref)
	}
	var mine []string
	for _, a := range p.allow {
		if !a.Names(user) {
			continue
		}
		patterns, diags := a.RefPatterns(user)
		if diags.HasErrors() {
			// Validated at load; a pattern that does not evaluate
			// allows nothing.
			continue
		}
		for _, pat := range patterns {
			if matchRef(pat, ref) {
				return nil
			}
			mine = append(mine, pat)
		}
	}
	if len(mine) == 0 {
		return fmt.Errorf("%w: provider %s allows user %s no references", ErrNotAllowed, provider, user)
	}
	return fmt.Errorf("%w: user %s may name references of provider %s that match %s, and %s does not",
		ErrNotAllowed, user, provider, strings.Join(mine, ", "), ref)
}

// matchRef reports whether ref matches pattern, where each "*" stands for
// any run of characters, "/" included.
func matchRef(pattern, ref string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == ref
	}
	rest, ok := strings.CutPrefix(ref, parts[0])
	if !ok {
		return false
	}
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, part)
		if i < 0 {
			return false
		}
		rest = rest[i+len(part):]
	}
	return len(rest) >= len(last) && strings.HasSuffix(rest, last)
}
