package main

import (
	"fmt"
	"strings"
)

// parseDotenv parses a dotenv file: KEY=VALUE lines, blank lines and
// "#" comments, an optional "export " before the key, and values that are
// bare (an inline comment needs a space before its "#"), 'single-quoted'
// (taken literally) or "double-quoted" (with \n, \r, \t, \", \\ and \$
// escapes). Quoted values may span lines, as PEM keys do. Nothing is
// expanded: ${OTHER} is those characters. A key given twice keeps its last
// value, as in a shell.
func parseDotenv(data []byte) (map[string]string, error) {
	p := &dotenvParser{s: strings.ReplaceAll(string(data), "\r\n", "\n"), line: 1}
	vars := map[string]string{}
	for {
		p.skipBlank()
		if p.eof() {
			return vars, nil
		}
		line := p.line
		key, value, err := p.entry()
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		vars[key] = value
	}
}

type dotenvParser struct {
	s    string
	pos  int
	line int
}

func (p *dotenvParser) eof() bool { return p.pos >= len(p.s) }

// skipBlank skips whitespace, blank lines and comment lines.
func (p *dotenvParser) skipBlank() {
	for !p.eof() {
		switch c := p.s[p.pos]; {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			p.restOfLine()
		default:
			return
		}
	}
}

// restOfLine consumes up to and including the next newline, returning
// what came before it.
func (p *dotenvParser) restOfLine() string {
	end := strings.IndexByte(p.s[p.pos:], '\n')
	if end < 0 {
		rest := p.s[p.pos:]
		p.pos = len(p.s)
		return rest
	}
	rest := p.s[p.pos : p.pos+end]
	p.pos += end + 1
	p.line++
	return rest
}

func (p *dotenvParser) entry() (key, value string, err error) {
	if rest := p.s[p.pos:]; strings.HasPrefix(rest, "export ") || strings.HasPrefix(rest, "export\t") {
		p.pos += len("export ")
		p.skipSpaces()
	}
	eq := strings.IndexAny(p.s[p.pos:], "=\n")
	if eq < 0 || p.s[p.pos+eq] != '=' {
		return "", "", fmt.Errorf("expected KEY=VALUE, got %q", strings.TrimSpace(p.restOfLine()))
	}
	key = strings.TrimSpace(p.s[p.pos : p.pos+eq])
	if !validKey(key) {
		return "", "", fmt.Errorf("%q is not a valid key: use letters, digits, _ . and -, not starting with a digit", key)
	}
	p.pos += eq + 1
	p.skipSpaces()
	if p.eof() {
		return key, "", nil
	}
	switch q := p.s[p.pos]; q {
	case '"', '\'':
		value, err = p.quoted(q)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", key, err)
		}
		if rest := strings.TrimSpace(p.restOfLine()); rest != "" && rest[0] != '#' {
			return "", "", fmt.Errorf("%s: unexpected %q after the closing quote", key, rest)
		}
	default:
		value = p.restOfLine()
		if i := strings.Index(value, " #"); i >= 0 {
			value = value[:i]
		}
		if i := strings.Index(value, "\t#"); i >= 0 {
			value = value[:i]
		}
		value = strings.TrimSpace(value)
	}
	return key, value, nil
}

func (p *dotenvParser) skipSpaces() {
	for !p.eof() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// quoted reads a value in quotes q, starting at the opening quote.
func (p *dotenvParser) quoted(q byte) (string, error) {
	var b strings.Builder
	for p.pos++; !p.eof(); p.pos++ {
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\' && q == '"' && p.pos+1 < len(p.s):
			p.pos++
			switch e := p.s[p.pos]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("no closing %c", q)
}

func validKey(key string) bool {
	if key == "" || key[0] >= '0' && key[0] <= '9' {
		return false
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
