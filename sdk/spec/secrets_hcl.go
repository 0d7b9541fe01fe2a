package spec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

const secretBlockHint = `a secrets file holds only secret "TYPE" "NAME" { ... } blocks`

// secretsHCL reads secret "TYPE" "NAME" { ... } blocks. Expressions are
// plain data, except that a sensitive value may be env("VAR") or
// file("path"): those two functions are read from the syntax rather than
// evaluated, so that each problem points at its argument and no other
// function or variable can run.
func (p *secretsParser) secretsHCL(src []byte) {
	file, diags := hclsyntax.ParseConfig(src, p.filename, hcl.InitialPos)
	p.addDiags(diags)
	if diags.HasErrors() {
		// A body that did not parse would only add noise.
		return
	}
	body := file.Body.(*hclsyntax.Body)
	for _, a := range sortedAttrs(body) {
		p.errorf(p.hclPos(a.NameRange), "unknown field %q: %s", a.Name, secretBlockHint)
	}
	secrets := 0
	for _, blk := range body.Blocks {
		pos := p.hclPos(blk.TypeRange)
		switch {
		case blk.Type != "secret":
			hint := ""
			if s := suggest(blk.Type, []string{"secret"}); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errorf(pos, "unknown block %q%s: %s", blk.Type, hint, secretBlockHint)
		case len(blk.Labels) != 2:
			secrets++
			p.errorf(pos, `secret block needs two labels, its type and its name, such as secret "env" "db-password" { ... }`)
		default:
			secrets++
			p.hclSecret(blk)
		}
	}
	if secrets == 0 {
		p.errorf(Pos{Filename: p.filename, Line: 1, Column: 1}, `secrets file declares no secrets: add secret "TYPE" "NAME" { ... } blocks`)
	}
}

func (p *secretsParser) hclSecret(blk *hclsyntax.Block) {
	d := p.begin(p.hclPos(blk.TypeRange), "secret")
	d.setName(p.hclPos(blk.LabelRanges[1]), blk.Labels[1])
	d.setType(p.hclPos(blk.LabelRanges[0]), blk.Labels[0])
	for _, inner := range blk.Body.Blocks {
		d.errorf(p.hclPos(inner.TypeRange), "%s is a block, but a secret holds only fields: write %s = ...", inner.Type, inner.Type)
	}
	for _, a := range sortedAttrs(blk.Body) {
		k, ok := d.key(p.hclPos(a.NameRange), a.Name)
		if !ok {
			continue
		}
		if k.kind == keyData {
			p.hclData(d, k, a.Expr)
			continue
		}
		if call, ok := a.Expr.(*hclsyntax.FunctionCallExpr); ok {
			d.errorf(p.hclPos(call.Range()), "%s is not a secret value, so write it as a plain string; env() and file() are for secret values", a.Name)
			continue
		}
		if s, pos, ok := p.hclString(a.Expr, d.label+": "+a.Name); ok {
			d.set(k, k.kind, pos, s)
		}
	}
	d.end()
}

// hclData reads a sensitive value: env("VAR"), file("path") or a string.
// Its messages name the type of a bad value, never the value.
func (p *secretsParser) hclData(d *secretDecl, k secretKey, e hclsyntax.Expression) {
	call, ok := e.(*hclsyntax.FunctionCallExpr)
	if !ok {
		v, pos, ok := p.hclValue(e, d.label+": "+k.name)
		switch {
		case !ok:
		case v.Type() != cty.String:
			d.errorf(pos, `%s must be env("VAR"), file("PATH") or a string, got %s`, k.name, withoutValue(describeCty(v)))
		default:
			d.set(k, keyData, pos, v.AsString())
		}
		return
	}
	kind := map[string]keyKind{"env": keyEnv, "file": keyFile}
	what := map[string]string{"env": `env("VAR")`, "file": `file("PATH")`}
	pos := p.hclPos(call.NameRange)
	switch {
	case what[call.Name] == "":
		d.errorf(pos, `%s: unknown function %q: a secret value is env("VAR"), file("PATH") or a string`, k.name, call.Name)
	case len(call.Args) != 1 || call.ExpandFinal:
		d.errorf(pos, "%s: %s takes one argument: write %s", k.name, call.Name, what[call.Name])
	default:
		if s, pos, ok := p.hclString(call.Args[0], fmt.Sprintf("%s: %s argument", d.label, call.Name)); ok {
			d.set(k, kind[call.Name], pos, s)
		}
	}
}
