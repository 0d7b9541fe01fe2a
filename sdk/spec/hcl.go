package spec

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// parseHCL reads an HCL spec into p and returns where its body starts.
// Expressions are evaluated without variables or functions: a spec is
// plain data.
func (p *parser) parseHCL(src []byte) Pos {
	file, diags := hclsyntax.ParseConfig(src, p.filename, hcl.InitialPos)
	p.addDiags(diags)
	start := Pos{Filename: p.filename, Line: 1, Column: 1}
	var body *hclsyntax.Body
	if file != nil {
		body, _ = file.Body.(*hclsyntax.Body)
	}
	if diags.HasErrors() || body == nil {
		// A body that did not parse would only add noise about missing fields.
		p.skipRequired()
		return start
	}
	p.hclBody(body, "", topFields, []string{"compute", "scheduling", "api"},
		func(a *hclsyntax.Attribute) {
			switch a.Name {
			case "name":
				if s, pos, ok := p.hclString(a.Expr, a.Name); ok {
					p.setName(pos, s)
				}
			case "image":
				if s, pos, ok := p.hclString(a.Expr, a.Name); ok {
					p.setImage(pos, s)
				}
			case "command":
				if s, pos, ok := p.hclString(a.Expr, a.Name); ok {
					p.setCommand(pos, s)
				}
			case "gpus":
				if n, pos, ok := p.hclInt(a.Expr, a.Name); ok {
					p.setGPUs(pos, a.Name, n)
				}
			case "env_variables":
				p.hclEnv(a.Expr)
			case "secrets":
				p.hclSecrets(a.Expr)
			case "max_log_size":
				v, pos, ok := p.hclValue(a.Expr, a.Name)
				if !ok {
					return
				}
				if v.Type() != cty.String && v.Type() != cty.Number {
					p.errorf(pos, "%s must be a size such as \"16MiB\", got %s", a.Name, describeCty(v))
					return
				}
				p.setMaxLogSize(pos, ctyText(v))
			case "mask_secrets":
				v, pos, ok := p.hclValue(a.Expr, a.Name)
				if !ok {
					return
				}
				if v.Type() != cty.Bool {
					p.errorf(pos, "%s must be true or false, got %s", a.Name, describeCty(v))
					return
				}
				mask := v.True()
				p.spec.MaskSecrets = &mask
			case "retries":
				if n, pos, ok := p.hclInt(a.Expr, a.Name); ok {
					p.setRetries(pos, n)
				}
			case "constraints":
				p.hclConstraints(a.Expr)
			case "refresh":
				if s, pos, ok := p.hclRefresh(a.Expr, a.Name); ok {
					p.setRefresh(pos, s)
				}
			case "on_change":
				if s, pos, ok := p.hclString(a.Expr, a.Name); ok {
					p.setOnChange(pos, s)
				}
			}
		},
		func(b *hclsyntax.Block) {
			switch b.Type {
			case "compute":
				p.hclBody(b.Body, "compute", computeFields, nil, p.hclCompute, nil)
			case "scheduling":
				p.hclBody(b.Body, "scheduling", schedulingFields, nil, p.hclScheduling, nil)
			case "api":
				p.hclBody(b.Body, "api", apiFields, nil, func(a *hclsyntax.Attribute) {
					if s, pos, ok := p.hclString(a.Expr, "api."+a.Name); ok {
						p.setSecretsAPI(pos, s)
					}
				}, nil)
			}
		})
	return start
}

func (p *parser) hclCompute(a *hclsyntax.Attribute) {
	path := "compute." + a.Name
	switch a.Name {
	case "gpus":
		if n, pos, ok := p.hclInt(a.Expr, path); ok {
			p.setGPUs(pos, path, n)
		}
	case "cpus":
		if v, pos, ok := p.hclValue(a.Expr, path); ok {
			if f, ok := p.ctyNumber(v, pos, path); ok {
				p.setCPUs(pos, f)
			}
		}
	case "memory":
		v, pos, ok := p.hclValue(a.Expr, path)
		if !ok {
			return
		}
		if v.Type() != cty.String && v.Type() != cty.Number {
			p.errorf(pos, "%s must be a size such as \"4Gi\", got %s", path, describeCty(v))
			return
		}
		p.setMemory(pos, ctyText(v))
	case "cluster":
		if s, pos, ok := p.hclString(a.Expr, path); ok {
			p.setCluster(pos, s)
		}
	}
}

func (p *parser) hclScheduling(a *hclsyntax.Attribute) {
	path := "scheduling." + a.Name
	v, pos, ok := p.hclValue(a.Expr, path)
	switch {
	case !ok:
	case v.Type() == cty.String:
		p.setMaxDurationString(pos, v.AsString())
	case v.Type() == cty.Number:
		if h, ok := p.ctyNumber(v, pos, path); ok {
			p.setMaxDurationHours(pos, h)
		}
	default:
		p.errorf(pos, "%s must be a number of hours or a duration such as \"30m\", got %s", path, describeCty(v))
	}
}

// hclEnv reads env_variables = { KEY = "value" }, pointing each problem at
// its key when the map is written out.
func (p *parser) hclEnv(e hclsyntax.Expression) {
	if obj, ok := e.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			k, kpos, okKey := p.hclString(item.KeyExpr, "env_variables key")
			v, vpos, okValue := p.hclValue(item.ValueExpr, "env_variables."+k)
			if okKey && okValue {
				if s, ok := p.ctyEnvValue(v, vpos, "env_variables."+k); ok {
					p.setEnv(kpos, k, s)
				}
			}
		}
		return
	}
	v, pos, ok := p.hclValue(e, "env_variables")
	if !ok {
		return
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		p.errorf(pos, "env_variables must be a map such as { LOG_LEVEL = \"info\" }, got %s", describeCty(v))
		return
	}
	for it := v.ElementIterator(); it.Next(); {
		k, val := it.Element()
		if s, ok := p.ctyEnvValue(val, pos, "env_variables."+k.AsString()); ok {
			p.setEnv(pos, k.AsString(), s)
		}
	}
}

// hclSecrets reads secrets = ["name", { name = "x", refresh = "30s" }, ...],
// pointing each problem at its element when the list is written out.
func (p *parser) hclSecrets(e hclsyntax.Expression) {
	if list, ok := e.(*hclsyntax.TupleConsExpr); ok {
		p.initSecrets()
		for i, item := range list.Exprs {
			path := fmt.Sprintf("secrets[%d]", i)
			if obj, ok := item.(*hclsyntax.ObjectConsExpr); ok {
				p.hclSecretItem(obj, path)
				continue
			}
			if s, pos, ok := p.hclString(item, path); ok {
				p.addSecret(pos, s)
			}
		}
		return
	}
	v, pos, ok := p.hclValue(e, "secrets")
	if !ok {
		return
	}
	if !v.Type().IsTupleType() && !v.Type().IsListType() {
		p.errorf(pos, "%s, got %s", secretsUsage(true), describeCty(v))
		return
	}
	p.initSecrets()
	for it := v.ElementIterator(); it.Next(); {
		i, item := it.Element()
		path := "secrets[" + ctyText(i) + "]"
		if !item.IsNull() && (item.Type().IsObjectType() || item.Type().IsMapType()) {
			p.ctySecretItem(item, pos, path)
			continue
		}
		if item.Type() != cty.String || item.IsNull() {
			p.errorf(pos, "%s must be a string, got %s", path, describeCty(item))
			continue
		}
		p.addSecret(pos, item.AsString())
	}
}

// hclSecretItem reads one secret of the list given as an object, pointing
// each problem at its field.
func (p *parser) hclSecretItem(obj *hclsyntax.ObjectConsExpr, path string) {
	it := secretItem{path: path, pos: p.hclPos(obj.Range())}
	seen := map[string]Pos{}
	for _, item := range obj.Items {
		k, kpos, ok := p.hclString(item.KeyExpr, path+" field name")
		if !ok {
			continue
		}
		if first, ok := seen[k]; ok {
			p.errorf(kpos, "field %q is set twice (also at %s): keep one", path+"."+k, first)
			continue
		}
		seen[k] = kpos
		full := path + "." + k
		f := it.field(k)
		if f == nil {
			p.unknownField(kpos, path, k, secretFields)
			continue
		}
		*f = itemField{given: true, pos: p.hclPos(item.ValueExpr.Range())}
		if k == "refresh" {
			f.value, _, f.ok = p.hclRefresh(item.ValueExpr, full)
		} else {
			f.value, _, f.ok = p.hclString(item.ValueExpr, full)
		}
	}
	p.addSecretItem(it)
}

// ctySecretItem reads one secret of a list that is not written out, so
// every problem points at the list.
func (p *parser) ctySecretItem(v cty.Value, pos Pos, path string) {
	it := secretItem{path: path, pos: pos}
	for iter := v.ElementIterator(); iter.Next(); {
		key, val := iter.Element()
		k, full := key.AsString(), path+"."+key.AsString()
		f := itemField{given: true, pos: pos}
		switch {
		case val.IsNull():
			p.errorf(pos, "%s has no value: give one or remove it", full)
		case val.Type() != cty.String && k == "refresh":
			p.durationTypeError(pos, full, describeCty(val))
		case val.Type() != cty.String:
			p.errorf(pos, "%s must be a string, got %s", full, describeCty(val))
		default:
			f.value, f.ok = val.AsString(), true
		}
		if dst := it.field(k); dst != nil {
			*dst = f
		} else {
			p.unknownField(pos, path, k, secretFields)
		}
	}
	p.addSecretItem(it)
}

// hclRefresh takes a refresh duration, which is written as a string such
// as "30s"; a bare number has no unit to go by.
func (p *parser) hclRefresh(e hclsyntax.Expression, path string) (string, Pos, bool) {
	v, pos, ok := p.hclValue(e, path)
	if !ok {
		return "", pos, false
	}
	if v.Type() != cty.String {
		p.durationTypeError(pos, path, describeCty(v))
		return "", pos, false
	}
	return v.AsString(), pos, true
}

// hclConstraints reads constraints = ["KEY = VALUE", ...], pointing each
// problem at its element when the list is written out.
func (p *parser) hclConstraints(e hclsyntax.Expression) {
	if list, ok := e.(*hclsyntax.TupleConsExpr); ok {
		for i, item := range list.Exprs {
			if s, pos, ok := p.hclString(item, fmt.Sprintf("constraints[%d]", i)); ok {
				p.addConstraint(pos, i, s)
			}
		}
		return
	}
	v, pos, ok := p.hclValue(e, "constraints")
	if !ok {
		return
	}
	if !v.Type().IsTupleType() && !v.Type().IsListType() {
		p.errorf(pos, "constraints must be a list of strings such as [\"node_class = gpu\"], got %s", describeCty(v))
		return
	}
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, item := it.Element()
		if item.Type() != cty.String || item.IsNull() {
			p.errorf(pos, "constraints[%d] must be a string, got %s", i, describeCty(item))
			continue
		}
		p.addConstraint(pos, i, item.AsString())
	}
}

// hclBody calls attr for each attribute and block for each block of b, and
// reports unknown fields, a block written as an attribute or the other
// way round, and repeated blocks. blockNames are the known fields that are
// blocks.
func (p *parser) hclBody(b *hclsyntax.Body, path string, known, blockNames []string, attr func(*hclsyntax.Attribute), block func(*hclsyntax.Block)) {
	full := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	for _, a := range sortedAttrs(b) {
		pos := p.hclPos(a.NameRange)
		switch {
		case !slices.Contains(known, a.Name):
			p.unknownField(pos, path, a.Name, known)
		case slices.Contains(blockNames, a.Name):
			p.errorf(pos, "%s is a block: write %s { ... } without \"=\"", full(a.Name), a.Name)
		default:
			if path == "" {
				p.present[a.Name] = true
			}
			attr(a)
		}
	}
	seen := map[string]Pos{}
	for _, blk := range b.Blocks {
		pos := p.hclPos(blk.TypeRange)
		switch first, repeated := seen[blk.Type]; {
		case !slices.Contains(known, blk.Type):
			p.unknownField(pos, path, blk.Type, known)
		case !slices.Contains(blockNames, blk.Type):
			p.errorf(pos, "%s is an attribute, not a block: write %s = ...", full(blk.Type), blk.Type)
		case len(blk.Labels) > 0:
			p.errorf(p.hclPos(blk.LabelRanges[0]), "%s block takes no label: write %s { ... }", full(blk.Type), blk.Type)
		case repeated:
			p.errorf(pos, "%s block is given twice (also at %s): merge them into one", full(blk.Type), first)
		default:
			seen[blk.Type] = pos
			block(blk)
		}
	}
}

// sortedAttrs returns the attributes of b in file order; hclsyntax keeps
// them in a map.
func sortedAttrs(b *hclsyntax.Body) []*hclsyntax.Attribute {
	attrs := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		attrs = append(attrs, a)
	}
	slices.SortFunc(attrs, func(a, b *hclsyntax.Attribute) int { return a.SrcRange.Start.Byte - b.SrcRange.Start.Byte })
	return attrs
}

// hclValue evaluates e as plain data, reporting errors and null.
func (r *reporter) hclValue(e hclsyntax.Expression, path string) (cty.Value, Pos, bool) {
	pos := r.hclPos(e.Range())
	v, diags := e.Value(nil)
	r.addDiags(diags)
	if diags.HasErrors() {
		return cty.NilVal, pos, false
	}
	if v.IsNull() {
		r.errorf(pos, "%s has no value: give one or remove it", path)
		return cty.NilVal, pos, false
	}
	return v, pos, true
}

func (r *reporter) hclString(e hclsyntax.Expression, path string) (string, Pos, bool) {
	v, pos, ok := r.hclValue(e, path)
	if !ok {
		return "", pos, false
	}
	if v.Type() != cty.String {
		r.errorf(pos, "%s must be a string, got %s", path, describeCty(v))
		return "", pos, false
	}
	return v.AsString(), pos, true
}

func (p *parser) hclInt(e hclsyntax.Expression, path string) (int, Pos, bool) {
	v, pos, ok := p.hclValue(e, path)
	if !ok {
		return 0, pos, false
	}
	if v.Type() == cty.Number {
		bf := v.AsBigFloat()
		if n, acc := bf.Int64(); bf.IsInt() && acc == 0 && int64(int(n)) == n {
			return int(n), pos, true
		}
	}
	p.errorf(pos, "%s must be a whole number, got %s", path, describeCty(v))
	return 0, pos, false
}

func (p *parser) ctyNumber(v cty.Value, pos Pos, path string) (float64, bool) {
	if v.Type() != cty.Number {
		p.errorf(pos, "%s must be a number, got %s", path, describeCty(v))
		return 0, false
	}
	f, _ := v.AsBigFloat().Float64()
	return f, true
}

// ctyEnvValue takes a string, number or bool as its text.
func (p *parser) ctyEnvValue(v cty.Value, pos Pos, path string) (string, bool) {
	if v.IsNull() {
		p.errorf(pos, "%s has no value: give one, or \"\" for an empty string", path)
		return "", false
	}
	if !v.Type().IsPrimitiveType() {
		p.errorf(pos, "%s must be a string, number or bool, got %s", path, describeCty(v))
		return "", false
	}
	return ctyText(v), true
}

// addDiags records HCL's own diagnostics, which carry their source ranges.
func (r *reporter) addDiags(diags hcl.Diagnostics) {
	for _, d := range diags {
		pos := Pos{Filename: r.filename}
		if d.Subject != nil {
			pos = r.hclPos(*d.Subject)
		}
		msg := lowerFirst(d.Summary)
		if d.Detail != "" {
			msg += "; " + strings.TrimSuffix(d.Detail, ".")
		}
		if d.Severity == hcl.DiagWarning {
			r.warnings = append(r.warnings, Warning{Pos: pos, Message: msg})
		} else {
			r.problems = append(r.problems, Problem{Pos: pos, Message: msg})
		}
	}
}

func (r *reporter) hclPos(rng hcl.Range) Pos {
	return Pos{Filename: r.filename, Line: rng.Start.Line, Column: rng.Start.Column}
}

// ctyText renders a known, non-null primitive as text: 2 as "2", true as
// "true".
func ctyText(v cty.Value) string {
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		return ""
	}
	return s.AsString()
}

// describeCty names what a value holds, for "got ..." in messages.
func describeCty(v cty.Value) string {
	t := v.Type()
	switch {
	case v.IsNull():
		return "null"
	case t == cty.String:
		return fmt.Sprintf("a string (%q)", v.AsString())
	case t == cty.Number:
		return "a number (" + ctyText(v) + ")"
	case t == cty.Bool:
		return "a bool (" + ctyText(v) + ")"
	case t.IsObjectType() || t.IsMapType():
		return "a map"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	}
	return "a " + t.FriendlyName()
}

// lowerFirst lowercases HCL's capitalised summaries ("Missing newline ...")
// to match the other messages, leaving acronyms alone.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if next, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(next) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
