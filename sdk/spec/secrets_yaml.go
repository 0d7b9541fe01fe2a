package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hush-sh/hush/sdk/api"
	"go.yaml.in/yaml/v3"
)

const (
	secretItemExample = "{type: env, name: db-password, value_from_env: DB_PASSWORD}"
	noSecretsHint     = "list them under secrets:, or write secrets: [] to declare none"
)

// secretsYAML reads a mapping whose only field, secrets, lists the secrets.
// Messages describe a bad node by its kind only: it may be a pasted value.
func (p *secretsParser) secretsYAML(src []byte) {
	start := Pos{Filename: p.filename, Line: 1, Column: 1}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(start, "secrets file is empty: %s", noSecretsHint)
		} else {
			p.yamlSyntaxError(src, err)
		}
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errorf(p.pos(&extra), `secrets file holds more than one YAML document: keep one, and remove the second "---"`)
	} else if !errors.Is(err, io.EOF) {
		p.yamlSyntaxError(src, err)
	}
	if len(doc.Content) == 0 {
		p.errorf(start, "secrets file is empty: %s", noSecretsHint)
		return
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf(p.pos(root), "secrets file must be a mapping such as secrets: [%s], got %s", secretItemExample, yamlKind(root))
		return
	}
	var list *yaml.Node
	var listPos Pos
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			p.errorf(p.pos(k), "field names must be words such as secrets, got %s", yamlKind(k))
		case k.Value != "secrets":
			hint := ""
			if s := suggest(k.Value, []string{"secrets"}); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errorf(p.pos(k), "unknown field %q%s: a secrets file holds only the secrets list", k.Value, hint)
		case list != nil:
			p.errorf(p.pos(k), `field "secrets" is set twice (also at %s): keep one`, listPos)
		default:
			list, listPos = v, p.pos(k)
		}
	}
	switch {
	case list == nil:
		p.errorf(p.pos(root), "secrets file has no secrets field: %s", noSecretsHint)
	case list.Kind == yaml.ScalarNode && list.ShortTag() == tagNull:
		p.errorf(listPos, `field "secrets" has no value: %s`, noSecretsHint)
	case list.Kind != yaml.SequenceNode:
		p.errorf(p.pos(list), "secrets must be a list such as [%s], got %s", secretItemExample, yamlKind(list))
	default:
		for i, item := range list.Content {
			p.yamlSecret(i, resolve(item))
		}
	}
}

// yamlSecret reads one item of the secrets list, the i-th.
func (p *secretsParser) yamlSecret(i int, item *yaml.Node) {
	label := fmt.Sprintf("secrets[%d]", i)
	if item.Kind != yaml.MappingNode {
		p.errorf(p.pos(item), "%s must be a mapping such as %s, got %s", label, secretItemExample, yamlKind(item))
		return
	}
	d := p.begin(p.pos(item), label)
	// The name labels every message and the type decides the other keys,
	// so read both first; name and typ index keys.
	var keys, values []*yaml.Node
	name, typ := -1, -1
	for j := 0; j+1 < len(item.Content); j += 2 {
		k, v := resolve(item.Content[j]), resolve(item.Content[j+1])
		if k.Kind != yaml.ScalarNode {
			p.errorf(p.pos(k), "%s: field names must be words such as type, got %s", label, yamlKind(k))
			continue
		}
		keys, values = append(keys, k), append(values, v)
		switch {
		case k.Value == "name" && name < 0:
			name = len(keys) - 1
		case k.Value == "type" && typ < 0:
			typ = len(keys) - 1
		}
	}
	if name < 0 {
		d.errorf(d.pos, "missing name: add name: with the secret's name, such as db-password")
	} else if s, ok := p.yamlString(values[name], label+": name"); ok {
		d.setName(p.pos(values[name]), s)
	}
	if typ < 0 {
		d.errorf(d.pos, "missing type: add type: with one of %s", strings.Join(api.TypeNames(), ", "))
	} else if s, ok := p.yamlString(values[typ], d.label+": type"); ok {
		d.setType(p.pos(values[typ]), s)
	}
	for j, k := range keys {
		switch {
		case j == name || j == typ:
		case k.Value == "name":
			d.errorf(p.pos(k), "name is set twice (also at %s): keep one", p.pos(keys[name]))
		case k.Value == "type":
			d.errorf(p.pos(k), "type is set twice (also at %s): keep one", p.pos(keys[typ]))
		default:
			if sk, ok := d.key(p.pos(k), k.Value); ok {
				p.yamlValue(d, sk, k, values[j])
			}
		}
	}
	d.end()
}

// yamlValue reads the value v of key k, which is written at key.
func (p *secretsParser) yamlValue(d *secretDecl, k secretKey, key, v *yaml.Node) {
	switch {
	case v.Kind == yaml.ScalarNode && v.ShortTag() == tagNull:
		d.errorf(p.pos(key), "%s has no value: give one or remove it", k.name)
	case v.Kind == yaml.ScalarNode && v.ShortTag() == tagStr:
		d.set(k, k.kind, p.pos(v), v.Value)
	case k.kind == keyData:
		hint := ""
		if v.Kind == yaml.ScalarNode {
			hint = "; put it in quotes to use it as text"
		}
		d.errorf(p.pos(v), "%s must be a string, got %s%s", k.name, yamlKind(v), hint)
	default:
		p.yamlString(v, d.label+": "+k.name)
	}
}

// withoutValue drops the value that describe and describeCty show in
// parentheses, for a value that may be secret: `a string ("x")` becomes
// "a string".
func withoutValue(description string) string {
	kind, _, _ := strings.Cut(description, " (")
	return kind
}

// yamlKind describes a node of a secrets file without its value or a tag
// of the file's own, which may be the start of a value ("!Passw0rd").
func yamlKind(v *yaml.Node) string {
	if v.Kind == yaml.ScalarNode && v.Tag != "" && !strings.HasPrefix(v.Tag, "!!") {
		return "a value with a YAML tag (a value that starts with ! must be in quotes)"
	}
	return withoutValue(describe(v))
}
