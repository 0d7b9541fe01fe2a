package spec

import (
	"reflect"
	"strings"
	"testing"
)

// TestYAMLSyntaxErrors checks that each common yaml.v3 syntax error points
// at the line and column of the problem, which yaml.v3 does not give, and
// says how to fix it.
func TestYAMLSyntaxErrors(t *testing.T) {
	const (
		indentedKey = "a key is indented under a value that is not a mapping: "
		siblings    = "; indent it like its siblings, or make the line above a mapping"
		tab         = ": YAML indents with spaces, never tabs: replace the tab with spaces"
		colonValue  = `: a ": " inside a value starts a mapping: put the value in quotes if the ": " belongs to it, or start a new line for the next key`
		unclosed    = `: the quoted value that starts here is never closed: end it with %s (inside "..." write a quote as \", inside '...' as '')`
	)
	tests := map[string]struct {
		src  string
		want string
	}{
		"seed's gpus indented under image": {
			"name: hello\nimage: python\n  gpus: 0\ncommand: x\n",
			"r.yaml:3:3: invalid YAML: mapping values are not allowed in this context: " + indentedKey + "line 3's `gpus:` is indented more than `image:` on line 2" + siblings},
		"key indented more than its sibling after a comment": {
			"compute:\n  cpus: 1\n  # more\n   memory: 4Gi\n",
			"r.yaml:4:4: invalid YAML: did not find expected key: line 4 is indented to column 4, which lines up with no key above it: indent it exactly like its sibling keys"},
		"key indented under a list item": {
			"secrets:\n  - x\n    y: 1\n",
			"r.yaml:3:5: invalid YAML: mapping values are not allowed in this context: " + indentedKey + "line 3's `y:` is indented more than line 2" + siblings},
		"colon in a value": {
			"name: a\nimage: b:c: d\n",
			"r.yaml:2:11: invalid YAML: mapping values are not allowed in this context" + colonValue},
		"colon in a value on line 1": {
			"command: echo a: b\n",
			"r.yaml:1:16: invalid YAML: mapping values are not allowed in this context" + colonValue},
		"key dedented to no sibling": {
			"name: a\ncompute:\n    gpus: 1\n  cpus: 2\n",
			"r.yaml:4:3: invalid YAML: did not find expected key: line 4 is indented to column 3, which lines up with no key above it: indent it exactly like its sibling keys"},
		"list item at key level": {
			"name: a\n- b\n",
			`r.yaml:2:1: invalid YAML: did not find expected key: a list item where a key was expected: indent the list under its key, such as "secrets:" then "  - name"`},
		"text after a quoted value": {
			"name: a\ncommand: \"echo\" hi\n",
			"r.yaml:2:17: invalid YAML: did not find expected key: more text follows a value that ended: put the whole value in quotes, or start a new line for the next key"},
		"key in a list": {
			"- a\nname: b\n",
			`r.yaml:2:1: invalid YAML: did not find expected '-' indicator: a key where a list item was expected: start it with "- " like the items above it, or indent it under an item to make it a field of that item`},
		"tab indenting a key": {
			"name: a\n\timage: b\n",
			"r.yaml:2:1: invalid YAML: found a tab character that violates indentation" + tab},
		"tab indenting a list item": {
			"name: a\nsecrets:\n  \t- b\n",
			"r.yaml:3:3: invalid YAML: found character that cannot start any token" + tab},
		"tab on line 1": {
			"\tname: a\n",
			"r.yaml:1:1: invalid YAML: found character that cannot start any token" + tab},
		"reserved character": {
			"name: a\ncommand: @echo\n",
			"r.yaml:2:10: invalid YAML: found character that cannot start any token: @ is reserved in YAML and cannot start a value: put the value in quotes"},
		"key without colon": {
			"name: a\nimage python\ncommand: c\n",
			`r.yaml:2:1: invalid YAML: could not find expected ':': a key needs a ":" after it, such as "image: python"; a value that goes on from the line above must be indented more than its key`},
		"unclosed double quote": {
			"name: a\ncommand: \"echo hi\nimage: b\n",
			"r.yaml:2:10: invalid YAML: found unexpected end of stream" + strings.Replace(unclosed, "%s", `"`, 1)},
		"unclosed single quote after non-ASCII": {
			"name: é\nimage: 'b\n",
			"r.yaml:2:8: invalid YAML: found unexpected end of stream" + strings.Replace(unclosed, "%s", `'`, 1)},
		"unknown escape after non-ASCII": {
			"name: a\ncommand: \"é\\d\"\n",
			`r.yaml:2:12: invalid YAML: found unknown escape character: in "..." a backslash starts an escape such as \n: write \\ for a backslash, or use '...', in which a backslash is plain`},
		"unclosed list": {
			"name: a\nsecrets: [a, b\nimage: x\n",
			`r.yaml:2:10: invalid YAML: did not find expected ',' or ']': the list that starts here is not closed: end it with "]", and separate its items with ","`},
		"unclosed mapping": {
			"name: a\nenv_variables: {A: b\nimage: x\n",
			`r.yaml:2:16: invalid YAML: did not find expected ',' or '}': the mapping that starts here is not closed: end it with "}", and separate its fields with ","`},
		"windows line ends": {
			"name: a\r\nimage: python\r\n  gpus: 0\r\n",
			"r.yaml:3:3: invalid YAML: mapping values are not allowed in this context: " + indentedKey + "line 3's `gpus:` is indented more than `image:` on line 2" + siblings},
		"in the second document": {
			"name: a\nimage: b\ncommand: c\n---\nx: 1\n  y: 2\n",
			"r.yaml:6:3: invalid YAML: mapping values are not allowed in this context: " + indentedKey + "line 6's `y:` is indented more than `x:` on line 5" + siblings},
		"other errors get a column": {
			"name: *x\n",
			"r.yaml:1:7: invalid YAML: unknown anchor 'x' referenced"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := Parse("r.yaml", []byte(tt.src))
			want := []string{tt.want}
			if got := problems(t, err); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestYAMLSyntaxErrorInSecretsFile checks that a syntax error in a secrets
// file, which may hold values, is located without quoting the file.
func TestYAMLSyntaxErrorInSecretsFile(t *testing.T) {
	src := "secrets:\n  - type: env\n    name: a\n    value: s3cret-value\n      tok3n: x\n"
	_, _, err := ParseSecrets("s.yaml", []byte(src), nil)
	want := []string{"s.yaml:5:7: invalid YAML: mapping values are not allowed in this context: a key is indented under a value that is not a mapping: line 5's key is indented more than line 4; indent it like its siblings, or make the line above a mapping"}
	if got := problems(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// TestYAMLLocateBudget checks that a locator out of budget falls back to
// yaml.v3's own line instead of decoding on.
func TestYAMLLocateBudget(t *testing.T) {
	l := &yamlLocator{src: []byte("a: 1\nb: 2\n  c: 3\n"), msg: "mapping values are not allowed in this context"}
	pos, hint := l.locate(3)
	if want := (Pos{Line: 3}); pos != want || hint != "" {
		t.Errorf("got %v and hint %q, want %v and no hint", pos, hint, want)
	}
}
