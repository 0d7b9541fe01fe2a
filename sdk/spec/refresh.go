package spec

import (
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// secretFields are the fields of a secret given as a mapping in the
// secrets list, rather than by name alone.
var secretFields = []string{"name", "refresh", "on_change"}

// refreshUsage is how to write a refresh, for messages.
const refreshUsage = `give how often to fetch the secrets again as a duration such as "30s" or "5m"`

// itemField is a string field of a secret mapping as read from either format.
// given is true when the field is there at all, ok when its value is a
// string, so that a bad value is reported once and not also as missing.
type itemField struct {
	value     string
	pos       Pos
	given, ok bool
}

// secretItem is one mapping of the secrets list: {name, refresh, on_change}.
type secretItem struct {
	// path names the item in messages, such as "secrets[1]".
	path string
	// pos is where the mapping starts, for a missing name.
	pos                     Pos
	name, refresh, onChange itemField
}

// field returns the field of the mapping named k, nil for one that is not
// in secretFields.
func (it *secretItem) field(k string) *itemField {
	switch k {
	case "name":
		return &it.name
	case "refresh":
		return &it.refresh
	case "on_change":
		return &it.onChange
	}
	return nil
}

// durationTypeError reports a refresh duration given as something other
// than a string: a bare number has no unit to go by.
func (p *parser) durationTypeError(pos Pos, path, got string) {
	p.errorf(pos, "%s must be a duration such as \"30s\" or \"5m\", got %s", path, got)
}

// refreshState is what finish needs to warn about an on_change that
// nothing refreshes.
type refreshState struct {
	// anyRefresh is true when the run or any secret gives a refresh, valid
	// or not, so that a bad one does not also bring a warning.
	anyRefresh bool
	// secretSettings is where each secret with refresh settings is
	// listed, to refuse listing it twice.
	secretSettings map[string]Pos
	// secretOnChange are the secrets that give on_change but no refresh
	// of their own.
	secretOnChange []secretItem
}

// setRefresh takes the run's refresh.
func (p *parser) setRefresh(pos Pos, s string) {
	p.given["refresh"] = pos
	p.anyRefresh = true
	if every, ok := p.parseRefresh(pos, "refresh", "", s); ok {
		p.spec.Refresh.Every = every
	}
}

// setOnChange takes the run's on_change.
func (p *parser) setOnChange(pos Pos, s string) {
	p.given["on_change"] = pos
	if v, ok := p.parseOnChange(pos, "", s); ok {
		p.spec.Refresh.OnChange = v
	}
}

// parseRefresh checks a refresh duration; path names it and secret is the
// secret it is for ("" for the run's), for messages.
func (p *parser) parseRefresh(pos Pos, path, secret, s string) (api.Duration, bool) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		p.errorf(pos, "%s %q is not valid: %s", path, s, refreshUsage)
		return 0, false
	}
	every := api.Duration(d)
	if err := api.ValidateRefresh(secret, api.Refresh{Every: every}); err != nil {
		p.errorf(pos, "%v", err)
		return 0, false
	}
	return every, true
}

// parseOnChange checks an on_change value and returns it normalized;
// prefix says which secret it is for ("" for the run's).
func (p *parser) parseOnChange(pos Pos, prefix, s string) (string, bool) {
	if strings.TrimSpace(s) == "" {
		p.errorf(pos, "%son_change is empty: give %q, %q or %q followed by a signal such as SIGHUP, or leave it out", prefix, api.OnChangeRestart, api.OnChangeNone, api.OnChangeSignal)
		return "", false
	}
	v, err := api.NormalizeOnChange(s)
	if err != nil {
		p.errorf(pos, "%s%v", prefix, err)
		return "", false
	}
	return v, true
}

// addSecretItem takes a secret given as a mapping: its name goes into the
// list like a plain name, its settings into SecretRefresh.
func (p *parser) addSecretItem(it secretItem) {
	var r api.Refresh
	valid := true
	if it.refresh.given {
		p.anyRefresh = true
	}
	if it.refresh.ok {
		every, ok := p.parseRefresh(it.refresh.pos, it.path+".refresh", it.name.value, it.refresh.value)
		r.Every, valid = every, valid && ok
	}
	if it.onChange.ok {
		v, ok := p.parseOnChange(it.onChange.pos, it.path+": ", it.onChange.value)
		r.OnChange, valid = v, valid && ok
	}
	if it.onChange.given && !it.refresh.given {
		p.secretOnChange = append(p.secretOnChange, it)
	}
	if !it.name.given {
		example := "{name: vault-token, refresh: 5m}"
		if p.hcl {
			example = `{ name = "vault-token", refresh = "5m" }`
		}
		p.errorf(it.pos, "%s needs a name: give the secret the settings are for, such as %s", it.path, example)
		return
	}
	if !it.name.ok {
		return
	}
	name := it.name.value
	hasSettings := it.refresh.given || it.onChange.given
	// A secret listed twice is used once, but with refresh settings on
	// either listing it is not clear which settings the user meant;
	// addSecret refuses the other way round.
	if first, listed := p.given["secrets."+name]; listed && hasSettings {
		p.errorf(it.name.pos, "secret %q is listed twice (also at %s) and has refresh settings here: list it once, with its settings", name, first)
		return
	}
	if !p.addSecret(it.name.pos, name) || !hasSettings {
		return
	}
	if p.secretSettings == nil {
		p.secretSettings = map[string]Pos{}
	}
	p.secretSettings[name] = it.name.pos
	if !valid {
		return
	}
	if p.spec.SecretRefresh == nil {
		p.spec.SecretRefresh = map[string]api.Refresh{}
	}
	p.spec.SecretRefresh[name] = r
}

// warnOnChange warns about an on_change that nothing refreshes: it would
// never happen, which is more likely a forgotten refresh than intended.
func (p *parser) warnOnChange() {
	_, runRefresh := p.given["refresh"]
	if pos, ok := p.given["on_change"]; ok && !p.anyRefresh {
		p.warnf(pos, "on_change has no effect without refresh: add a refresh such as \"5m\" to the run or to a secret, or remove on_change")
	}
	if runRefresh {
		return
	}
	for _, it := range p.secretOnChange {
		p.warnf(it.onChange.pos, "%s: on_change has no effect without refresh: give the secret or the run a refresh such as \"5m\", or remove on_change", it.path)
	}
}

// secretsUsage is how to write the secrets list, for messages.
func secretsUsage(hcl bool) string {
	if hcl {
		return `secrets must be a list of secret names such as ["secret-stuff"], or of objects such as { name = "vault-token", refresh = "5m" }`
	}
	return "secrets must be a list of secret names such as [secret-stuff], or of mappings such as {name: vault-token, refresh: 5m}"
}
