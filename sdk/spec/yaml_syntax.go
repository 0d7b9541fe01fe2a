package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// yamlErrRe splits a yaml.v3 syntax error into its line, when it has one,
// and its message.
var yamlErrRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`) })

// msgMappingValues is yaml.v3's message for a ": " where no key may start.
const msgMappingValues = "mapping values are not allowed in this context"

// yamlLocateBudget caps the bytes decoded to find where a syntax error is:
// finding it decodes prefixes of the file, and a huge file with an error
// far from where yaml.v3 says should not take long to be refused.
const yamlLocateBudget = 32 << 20

// yamlSyntaxError reports an error from the YAML parser at the line and
// column of the problem, with a hint that says how to fix it. src is the
// whole file.
//
// yaml.v3 gives a line but no column, and the line is not always the
// problem's: for a parser error it is the 0-based line of the enclosing
// mapping or list. yaml.v3 also fails on a prefix of the file at the
// point where the problem is, so the parser itself says where: the
// problem is at the end of the shortest prefix that fails with the same
// message. What the message means then picks the column and the hint.
// Hints never quote text from a secrets file, which may hold values.
func (r *reporter) yamlSyntaxError(src []byte, err error) {
	m := yamlErrRe().FindStringSubmatch(err.Error())
	if m == nil {
		r.errorf(Pos{Filename: r.filename}, "invalid YAML: %s", r.unquoted(err.Error()))
		return
	}
	reported, _ := strconv.Atoi(m[1])
	msg := m[2]
	// The search costs a few decodes of the file, not more.
	budget := min(yamlLocateBudget, 4*len(src)+64<<10)
	l := &yamlLocator{src: src, msg: msg, budget: budget, sensitive: r.sensitive}
	pos, hint := l.locate(reported)
	pos.Filename = r.filename
	msg = r.unquoted(msg)
	if hint != "" {
		msg += ": " + hint
	}
	r.errorf(pos, "invalid YAML: %s", msg)
}

// quotedText is text that yaml.v3 quotes from the file in its messages,
// such as an anchor's name.
var quotedText = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`'[^']*'|"[^"]*"`) })

// unquoted leaves out of a secrets file's message the text yaml.v3 quotes
// from it: a value that starts with * or & reads as an anchor's name.
func (r *reporter) unquoted(msg string) string {
	if !r.sensitive || !quotedText().MatchString(msg) {
		return msg
	}
	return quotedText().ReplaceAllString(msg, "(text not shown)") + " (a value that starts with *, &, ! or @ must be in quotes)"
}

// yamlLocator finds where in src yaml.v3 fails with msg.
type yamlLocator struct {
	src    []byte
	msg    string
	budget int
	// sensitive keeps file text out of hints.
	sensitive bool
	// starts holds the offset of each line's start, and len(src) last.
	starts []int
}

// locate returns where the problem is and a hint. reported is yaml.v3's
// line, 0 when it gave none; the problem is on that line or after it.
func (l *yamlLocator) locate(reported int) (Pos, string) {
	l.starts = []int{0}
	for i, c := range l.src {
		if c == '\n' {
			l.starts = append(l.starts, i+1)
		}
	}
	if l.starts[len(l.starts)-1] != len(l.src) {
		l.starts = append(l.starts, len(l.src))
	}
	lines := len(l.starts) - 1
	line := 0
	for n := max(reported, 1); n <= lines; n++ {
		if l.failsAt(l.starts[n]) {
			line = n
			break
		}
	}
	if line == 0 {
		// Not found within the budget: yaml.v3's line is the best there is.
		return Pos{Line: reported}, ""
	}
	off := -1
	for k := l.starts[line-1] + 1; k <= l.starts[line]; k++ {
		// A prefix that ends in ":" makes it a key's, so "b:c" would
		// fail at its ":", where the file does not.
		if l.msg == msgMappingValues && k < len(l.src) && !strings.ContainsRune(" \t\r\n", rune(l.src[k])) {
			continue
		}
		if l.failsAt(k) {
			off = k - 1
			break
		}
	}
	if off < 0 {
		return Pos{Line: line}, ""
	}
	return l.explain(line, off)
}

// failsAt reports whether decoding the first n bytes of the file fails
// with the message being located.
func (l *yamlLocator) failsAt(n int) bool {
	if l.budget < n {
		return false
	}
	l.budget -= n
	dec := yaml.NewDecoder(bytes.NewReader(l.src[:n]))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		switch {
		case errors.Is(err, io.EOF):
			return false
		case err != nil:
			m := yamlErrRe().FindStringSubmatch(err.Error())
			return m != nil && m[2] == l.msg
		}
	}
}

// explain picks the column and the hint for the problem found at byte off
// of line.
func (l *yamlLocator) explain(line, off int) (Pos, string) {
	text := l.lineText(line)
	start := l.starts[line-1]
	at := func(o int) Pos {
		return Pos{Line: line, Column: utf8.RuneCount(l.src[start:o]) + 1}
	}
	first := start + indentOf(text)
	switch {
	case l.msg == msgMappingValues:
		return l.mappingValue(line, first, off, at)
	case l.msg == "did not find expected key":
		tok := tokenStart(l.src, start, off)
		switch {
		case isListItem(l.restOfLine(tok)):
			return at(tok), "a list item where a key was expected: indent the list under its key, such as \"secrets:\" then \"  - name\""
		case tok > first:
			return at(tok), "more text follows a value that ended: put the whole value in quotes, or start a new line for the next key"
		}
		return at(tok), fmt.Sprintf("line %d is indented to column %d, which lines up with no key above it: indent it exactly like its sibling keys", line, indentOf(text)+1)
	case l.msg == "did not find expected '-' indicator":
		return at(tokenStart(l.src, start, off)), "a key where a list item was expected: start it with \"- \" like the items above it, or indent it under an item to make it a field of that item"
	case l.msg == "could not find expected ':'":
		return at(first), "a key needs a \":\" after it, such as \"image: python\"; a value that goes on from the line above must be indented more than its key"
	case l.msg == "found character that cannot start any token" || l.msg == "found a tab character that violates indentation":
		if i := strings.IndexByte(text, '\t'); i >= 0 && (l.msg != "found character that cannot start any token" || start+i <= off) {
			return at(start + i), "YAML indents with spaces, never tabs: replace the tab with spaces"
		}
		if c := l.src[off]; c == '@' || c == '`' {
			return at(off), fmt.Sprintf("%c is reserved in YAML and cannot start a value: put the value in quotes", c)
		}
		return at(off), "put the value in quotes"
	case l.msg == "found unexpected end of stream":
		if c := l.src[off]; c == '"' || c == '\'' {
			return at(off), fmt.Sprintf(`the quoted value that starts here is never closed: end it with %c (inside "..." write a quote as \", inside '...' as '')`, c)
		}
	case l.msg == "did not find expected ',' or ']'":
		return at(openBracket(l.src, start, off, '[')), "the list that starts here is not closed: end it with \"]\", and separate its items with \",\""
	case l.msg == "did not find expected ',' or '}'":
		return at(openBracket(l.src, start, off, '{')), "the mapping that starts here is not closed: end it with \"}\", and separate its fields with \",\""
	case l.msg == "found unknown escape character":
		return at(off), `in "..." a backslash starts an escape such as \n: write \\ for a backslash, or use '...', in which a backslash is plain`
	}
	return at(tokenStart(l.src, start, off)), ""
}

// mappingValue explains a ": " where no key may start, at byte off of
// line, whose first character is at byte first. Most often the line is a
// key indented under a key that holds a plain value, which the key then
// continues; otherwise the ": " is inside a value.
func (l *yamlLocator) mappingValue(line, first, off int, at func(int) Pos) (Pos, string) {
	text := l.lineText(line)
	above := line - 1
	for above > 0 && isBlankYAML(l.lineText(above)) {
		above--
	}
	isKey := !strings.Contains(string(l.src[first:off]), ": ") && !strings.HasPrefix(text[indentOf(text):], "- ")
	if above == 0 || !isKey || indentOf(text) <= indentOf(l.lineText(above)) {
		return at(off), "a \": \" inside a value starts a mapping: put the value in quotes if the \": \" belongs to it, or start a new line for the next key"
	}
	key, aboveKey := "key", fmt.Sprintf("line %d", above)
	if !l.sensitive {
		key = "`" + string(l.src[first:off+1]) + "`"
		if k, _, ok := strings.Cut(strings.TrimSpace(l.lineText(above)), ": "); ok && !strings.ContainsAny(k, "\"'{[") {
			aboveKey = fmt.Sprintf("`%s:` on line %d", strings.TrimPrefix(k, "- "), above)
		}
	}
	return at(first), fmt.Sprintf("a key is indented under a value that is not a mapping: line %d's %s is indented more than %s; indent it like its siblings, or make the line above a mapping", line, key, aboveKey)
}

// lineText is line n of the file without its line break.
func (l *yamlLocator) lineText(n int) string {
	return strings.TrimRight(string(l.src[l.starts[n-1]:l.starts[n]]), "\r\n")
}

// restOfLine is the file from byte off to the end of its line.
func (l *yamlLocator) restOfLine(off int) string {
	end := bytes.IndexByte(l.src[off:], '\n')
	if end < 0 {
		return string(l.src[off:])
	}
	return string(l.src[off : off+end+1])
}

// isListItem reports whether a line, from its first non-space character,
// is a list item: "-" then a blank or the end of the line.
func isListItem(s string) bool {
	rest, ok := strings.CutPrefix(s, "-")
	return ok && (rest == "" || strings.ContainsRune(" \t\r\n", rune(rest[0])))
}

// indentOf counts the spaces that start s.
func indentOf(s string) int {
	return len(s) - len(strings.TrimLeft(s, " "))
}

// isBlankYAML reports whether a line holds nothing but spaces and a
// comment.
func isBlankYAML(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || strings.HasPrefix(s, "#")
}

// tokenStart goes back from byte off to the start of the run of non-blank
// characters it is in, not before byte start.
func tokenStart(src []byte, start, off int) int {
	for off > start && src[off-1] != ' ' && src[off-1] != '\t' {
		off--
	}
	return off
}

// openBracket finds the last open bracket at or before byte off and not
// before byte start; off itself when there is none.
func openBracket(src []byte, start, off int, open byte) int {
	if i := bytes.LastIndexByte(src[start:off+1], open); i >= 0 {
		return start + i
	}
	return off
}
