package spec

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/hush-sh/hush/sdk/api"
)

// MaxRetries bounds a run spec's retries: a run whose node was lost ten
// times has a problem that placing it again does not fix.
const MaxRetries = 10

// constraintRe is "KEY OP VALUE": a key without spaces or operator
// characters, "=" or "!=", and a value that holds no "=", so that "a == b"
// is refused rather than read as the value "= b".
var constraintRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([^\s=!]+)\s*(!=|=)\s*([^=]*)$`) })

// ParseConstraint parses a constraint as run specs write it: "KEY = VALUE"
// or "KEY != VALUE", such as "node_class = gpu" or "rack != r2". Spaces
// around the operator are optional.
func ParseConstraint(s string) (api.Constraint, error) {
	m := constraintRe().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return api.Constraint{}, fmt.Errorf("%q: use KEY = VALUE or KEY != VALUE, such as \"node_class = gpu\"", s)
	}
	if m[3] == "" {
		return api.Constraint{}, fmt.Errorf("%q: give a value after %q, such as \"%s %s gpu\"", s, m[2], m[1], m[2])
	}
	return api.Constraint{Key: m[1], Op: m[2], Value: m[3]}, nil
}

// setRetries takes retries: how many times the run is placed again when
// its node is lost.
func (p *parser) setRetries(pos Pos, n int) {
	if n < 0 || n > MaxRetries {
		p.errorf(pos, "retries is %d: give how many times the run is placed again when its node is lost, from 0 to %d", n, MaxRetries)
		return
	}
	p.spec.Retries = n
}

// addConstraint takes constraints[i]. A constraint given twice is used
// once, as a secret listed twice is.
func (p *parser) addConstraint(pos Pos, i int, s string) {
	c, err := ParseConstraint(s)
	if err != nil {
		p.errorf(pos, "constraints[%d]: %v", i, err)
		return
	}
	path := "constraints." + c.String()
	if first, ok := p.given[path]; ok {
		p.warnf(pos, "constraint %q is listed twice (also at %s); it is used once", c.String(), first)
		return
	}
	p.given[path] = pos
	p.spec.Constraints = append(p.spec.Constraints, c)
}
