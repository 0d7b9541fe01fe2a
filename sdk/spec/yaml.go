package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"go.yaml.in/yaml/v3"
)

// YAML tags of the scalars a spec uses.
const (
	tagStr   = "!!str"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagBool  = "!!bool"
	tagNull  = "!!null"
)

// parseYAML reads a YAML spec into p and returns where the document starts.
func (p *parser) parseYAML(src []byte) Pos {
	start := Pos{Filename: p.filename, Line: 1, Column: 1}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(start, "run spec is empty: give at least name, image and command")
		} else {
			p.yamlSyntaxError(src, err)
		}
		p.skipRequired()
		return start
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errorf(p.pos(&extra), "run spec holds more than one YAML document: keep one, and remove the second \"---\"")
	} else if !errors.Is(err, io.EOF) {
		p.yamlSyntaxError(src, err)
	}

	if len(doc.Content) == 0 {
		p.errorf(start, "run spec is empty: give at least name, image and command")
		p.skipRequired()
		return start
	}
	root := resolve(doc.Content[0])
	start = p.pos(root)
	if root.Kind != yaml.MappingNode {
		p.errorf(start, "run spec must be a mapping of fields such as \"name: hello\", got %s", describe(root))
		p.skipRequired()
		return start
	}
	p.yamlFields(root, "", topFields, func(name string, v *yaml.Node) {
		switch name {
		case "name":
			if s, ok := p.yamlString(v, name); ok {
				p.setName(p.pos(v), s)
			}
		case "image":
			if s, ok := p.yamlString(v, name); ok {
				p.setImage(p.pos(v), s)
			}
		case "command":
			if s, ok := p.yamlString(v, name); ok {
				p.setCommand(p.pos(v), s)
			}
		case "gpus":
			if n, ok := p.yamlInt(v, name); ok {
				p.setGPUs(p.pos(v), name, n)
			}
		case "compute":
			p.yamlCompute(v)
		case "env_variables":
			p.yamlEnv(v)
		case "secrets":
			p.yamlSecrets(v)
		case "scheduling":
			p.yamlScheduling(v)
		case "max_log_size":
			if v.Kind != yaml.ScalarNode || (v.ShortTag() != tagStr && v.ShortTag() != tagInt) {
				p.errorf(p.pos(v), "%s must be a size such as \"16MiB\", got %s", name, describe(v))
				return
			}
			p.setMaxLogSize(p.pos(v), v.Value)
		case "mask_secrets":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != tagBool {
				p.errorf(p.pos(v), "%s must be true or false, got %s", name, describe(v))
				return
			}
			mask := v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
			p.spec.MaskSecrets = &mask
		case "api":
			p.yamlAPI(v)
		case "retries":
			if n, ok := p.yamlInt(v, name); ok {
				p.setRetries(p.pos(v), n)
			}
		case "constraints":
			p.yamlConstraints(v)
		case "refresh":
			if s, ok := p.yamlRefresh(v, name); ok {
				p.setRefresh(p.pos(v), s)
			}
		case "on_change":
			if s, ok := p.yamlString(v, name); ok {
				p.setOnChange(p.pos(v), s)
			}
		}
	})
	return start
}

// yamlRefresh takes a refresh duration, which is written as text such as
// 30s; a bare number has no unit to go by.
func (p *parser) yamlRefresh(v *yaml.Node, path string) (string, bool) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == tagStr {
		return v.Value, true
	}
	p.durationTypeError(p.pos(v), path, describe(v))
	return "", false
}

func (p *parser) yamlConstraints(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.errorf(p.pos(v), "constraints must be a list of strings such as [\"node_class = gpu\"], got %s", describe(v))
		return
	}
	for i, item := range v.Content {
		item = resolve(item)
		if s, ok := p.yamlString(item, fmt.Sprintf("constraints[%d]", i)); ok {
			p.addConstraint(p.pos(item), i, s)
		}
	}
}

func (p *parser) yamlAPI(m *yaml.Node) {
	if !p.yamlMapping(m, "api", "secrets: write") {
		return
	}
	p.yamlFields(m, "api", apiFields, func(name string, v *yaml.Node) {
		if s, ok := p.yamlString(v, "api."+name); ok {
			p.setSecretsAPI(p.pos(v), s)
		}
	})
}

func (p *parser) yamlCompute(m *yaml.Node) {
	if !p.yamlMapping(m, "compute", "gpus: 1") {
		return
	}
	p.yamlFields(m, "compute", computeFields, func(name string, v *yaml.Node) {
		path := "compute." + name
		switch name {
		case "gpus":
			if n, ok := p.yamlInt(v, path); ok {
				p.setGPUs(p.pos(v), path, n)
			}
		case "cpus":
			if n, ok := p.yamlNumber(v, path); ok {
				p.setCPUs(p.pos(v), n)
			}
		case "memory":
			if v.Kind != yaml.ScalarNode || (v.ShortTag() != tagStr && v.ShortTag() != tagInt) {
				p.errorf(p.pos(v), "%s must be a size such as \"4Gi\", got %s", path, describe(v))
				return
			}
			p.setMemory(p.pos(v), v.Value)
		case "cluster":
			if s, ok := p.yamlString(v, path); ok {
				p.setCluster(p.pos(v), s)
			}
		}
	})
}

func (p *parser) yamlScheduling(m *yaml.Node) {
	if !p.yamlMapping(m, "scheduling", "max_duration: 2") {
		return
	}
	p.yamlFields(m, "scheduling", schedulingFields, func(name string, v *yaml.Node) {
		path := "scheduling." + name
		switch {
		case v.Kind == yaml.ScalarNode && v.ShortTag() == tagStr:
			p.setMaxDurationString(p.pos(v), v.Value)
		case v.Kind == yaml.ScalarNode && (v.ShortTag() == tagInt || v.ShortTag() == tagFloat):
			if h, ok := p.yamlNumber(v, path); ok {
				p.setMaxDurationHours(p.pos(v), h)
			}
		default:
			p.errorf(p.pos(v), "%s must be a number of hours or a duration such as \"30m\", got %s", path, describe(v))
		}
	})
}

// yamlEnv reads env_variables as a mapping {KEY: value} or as mcli's list
// of {key: KEY, value: value}.
func (p *parser) yamlEnv(v *yaml.Node) {
	switch v.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
			if k.Kind != yaml.ScalarNode {
				p.errorf(p.pos(k), "env_variables: a variable name must be a word such as LOG_LEVEL, got %s", describe(k))
				continue
			}
			if s, ok := p.yamlEnvValue(val, "env_variables."+k.Value); ok {
				p.setEnv(p.pos(k), k.Value, s)
			}
		}
	case yaml.SequenceNode:
		for i, item := range v.Content {
			item = resolve(item)
			path := fmt.Sprintf("env_variables[%d]", i)
			if !p.yamlMapping(item, path, "key: LOG_LEVEL") {
				continue
			}
			var key, value *yaml.Node
			p.yamlFields(item, path, []string{"key", "value"}, func(name string, v *yaml.Node) {
				if name == "key" {
					key = v
				} else {
					value = v
				}
			})
			if key == nil || value == nil {
				p.errorf(p.pos(item), "%s needs both key and value, such as {key: LOG_LEVEL, value: info}", path)
				continue
			}
			k, okKey := p.yamlString(key, path+".key")
			s, okValue := p.yamlEnvValue(value, path+".value")
			if okKey && okValue {
				p.setEnv(p.pos(key), k, s)
			}
		}
	default:
		p.errorf(p.pos(v), "env_variables must be a mapping such as {LOG_LEVEL: info}, or a list of {key: LOG_LEVEL, value: info}, got %s", describe(v))
	}
}

// yamlEnvValue takes a string, number or boolean as written.
func (p *parser) yamlEnvValue(v *yaml.Node, path string) (string, bool) {
	if v.Kind == yaml.ScalarNode {
		switch v.ShortTag() {
		case tagStr, tagInt, tagFloat, tagBool:
			return v.Value, true
		case tagNull:
			p.errorf(p.pos(v), "%s has no value: give one, or \"\" for an empty string", path)
			return "", false
		}
	}
	p.errorf(p.pos(v), "%s must be a string, number or boolean, got %s", path, describe(v))
	return "", false
}

// yamlSecrets reads secrets as a list whose items are names, or mappings
// {name, refresh, on_change} for a secret with refresh settings of its own.
func (p *parser) yamlSecrets(v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		p.errorf(p.pos(v), "%s, got %s", secretsUsage(false), describe(v))
		return
	}
	p.initSecrets()
	for i, item := range v.Content {
		item = resolve(item)
		path := fmt.Sprintf("secrets[%d]", i)
		if item.Kind == yaml.MappingNode {
			p.yamlSecretItem(item, path)
			continue
		}
		if s, ok := p.yamlString(item, path); ok {
			p.addSecret(p.pos(item), s)
		}
	}
}

// yamlSecretItem reads one secret of the list given as a mapping.
func (p *parser) yamlSecretItem(m *yaml.Node, path string) {
	it := secretItem{path: path, pos: p.pos(m)}
	// A field without a value is reported by yamlFields, which then skips
	// it; it is still given, so that a name: with nothing after it is not
	// also reported missing.
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if f := it.field(k.Value); f != nil {
			f.given, f.pos = true, p.pos(v)
		}
	}
	p.yamlFields(m, path, secretFields, func(name string, v *yaml.Node) {
		f, full := it.field(name), path+"."+name
		if name == "refresh" {
			f.value, f.ok = p.yamlRefresh(v, full)
		} else {
			f.value, f.ok = p.yamlString(v, full)
		}
	})
	p.addSecretItem(it)
}

// yamlFields calls fn for each field of mapping m that is in known, and
// reports unknown, repeated and empty fields. path names m in messages.
func (p *parser) yamlFields(m *yaml.Node, path string, known []string, fn func(name string, v *yaml.Node)) {
	seen := map[string]Pos{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		kp := p.pos(k)
		if k.Kind != yaml.ScalarNode {
			p.errorf(kp, "field names must be words such as name, got %s", describe(k))
			continue
		}
		name, full := k.Value, k.Value
		if path != "" {
			full = path + "." + name
		}
		if first, ok := seen[name]; ok {
			p.errorf(kp, "field %q is set twice (also at %s): keep one", full, first)
			continue
		}
		seen[name] = kp
		if !slices.Contains(known, name) {
			p.unknownField(kp, path, name, known)
			continue
		}
		if path == "" {
			p.present[name] = true
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == tagNull {
			hint := "give one or remove the field"
			if full == "secrets" {
				hint = "write secrets: [] for no secrets, or remove the field for all of them"
			}
			p.errorf(kp, "field %q has no value: %s", full, hint)
			continue
		}
		fn(name, v)
	}
}

// yamlMapping reports whether v is a mapping, and says it must be if not.
func (r *reporter) yamlMapping(v *yaml.Node, path, example string) bool {
	if v.Kind == yaml.MappingNode {
		return true
	}
	r.errorf(r.pos(v), "%s must be a mapping of fields such as {%s}, got %s", path, example, describe(v))
	return false
}

func (r *reporter) yamlString(v *yaml.Node, path string) (string, bool) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == tagStr {
		return v.Value, true
	}
	hint := ""
	if t := v.ShortTag(); v.Kind == yaml.ScalarNode && (t == tagInt || t == tagFloat || t == tagBool) {
		hint = "; put it in quotes to use it as text"
	}
	r.errorf(r.pos(v), "%s must be a string, got %s%s", path, describe(v), hint)
	return "", false
}

func (p *parser) yamlInt(v *yaml.Node, path string) (int, bool) {
	var n int
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tagInt {
		p.errorf(p.pos(v), "%s must be a whole number, got %s", path, describe(v))
		return 0, false
	}
	if err := v.Decode(&n); err != nil {
		p.errorf(p.pos(v), "%s is out of range: give a smaller whole number", path)
		return 0, false
	}
	return n, true
}

func (p *parser) yamlNumber(v *yaml.Node, path string) (float64, bool) {
	var f float64
	if v.Kind != yaml.ScalarNode || (v.ShortTag() != tagInt && v.ShortTag() != tagFloat) || v.Decode(&f) != nil {
		p.errorf(p.pos(v), "%s must be a number, got %s", path, describe(v))
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		p.errorf(p.pos(v), "%s must be a finite number, got %s", path, v.Value)
		return 0, false
	}
	return f, true
}

// skipRequired stops finish from reporting missing fields when the spec
// could not be read at all.
func (p *parser) skipRequired() {
	for _, f := range requiredFields {
		p.present[f] = true
	}
}

func (r *reporter) pos(n *yaml.Node) Pos {
	return Pos{Filename: r.filename, Line: n.Line, Column: n.Column}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what a node holds, for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagStr:
			return fmt.Sprintf("a string (%q)", n.Value)
		case tagInt:
			return "a whole number (" + n.Value + ")"
		case tagFloat:
			return "a number (" + n.Value + ")"
		case tagBool:
			return "a boolean (" + n.Value + ")"
		case tagNull:
			return "nothing (null)"
		}
		return fmt.Sprintf("a %s value (%q)", n.ShortTag(), n.Value)
	}
	return "an unexpected YAML node"
}
