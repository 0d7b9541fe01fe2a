package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseDotenv(t *testing.T) {
	tests := map[string]struct {
		in   string
		want map[string]string
	}{
		"plain":          {"A=1\nB=two\n", map[string]string{"A": "1", "B": "two"}},
		"no final eol":   {"A=1", map[string]string{"A": "1"}},
		"crlf":           {"A=1\r\nB=2\r\n", map[string]string{"A": "1", "B": "2"}},
		"comments":       {"# top\n\n  # indented\nA=1 # trailing\nB=x#not-a-comment\n", map[string]string{"A": "1", "B": "x#not-a-comment"}},
		"export":         {"export A=1\nexport\tB=2\nexporter=3\n", map[string]string{"A": "1", "B": "2", "exporter": "3"}},
		"spaces":         {"  A = spaced value  \n", map[string]string{"A": "spaced value"}},
		"empty value":    {"A=\nB=\"\"\n", map[string]string{"A": "", "B": ""}},
		"double quotes":  {`A="a \"b\" \\ \$HOME\tx\n"`, map[string]string{"A": "a \"b\" \\ $HOME\tx\n"}},
		"single quotes":  {`A='lit \n $x "q"' # note`, map[string]string{"A": `lit \n $x "q"`}},
		"hash in quotes": {`A="p#ss # word"`, map[string]string{"A": "p#ss # word"}},
		"equals in value": {"URL=postgres://u:p@h/db?sslmode=require\n",
			map[string]string{"URL": "postgres://u:p@h/db?sslmode=require"}},
		"multiline": {"KEY=\"-----BEGIN-----\nabc\n-----END-----\"\nNEXT=1\n",
			map[string]string{"KEY": "-----BEGIN-----\nabc\n-----END-----", "NEXT": "1"}},
		"no expansion":   {"A=1\nB=${A}\n", map[string]string{"A": "1", "B": "${A}"}},
		"last wins":      {"A=1\nA=2\n", map[string]string{"A": "2"}},
		"dotted keys":    {"app.db-url=x\n", map[string]string{"app.db-url": "x"}},
		"unknown escape": {`A="\d"`, map[string]string{"A": `\d`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseDotenv([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseDotenv: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseDotenvErrors(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
	}{
		"no equals":        {"A=1\nJUSTAKEY\n", "line 2: expected KEY=VALUE"},
		"bad key":          {"1A=x\n", `line 1: "1A" is not a valid key`},
		"key with space":   {"A B=x\n", `"A B" is not a valid key`},
		"empty key":        {"=x\n", `"" is not a valid key`},
		"unclosed double":  {"A=1\nB=\"open\nC=3\n", `line 2: B: no closing "`},
		"unclosed single":  {"B='open", "line 1: B: no closing '"},
		"junk after quote": {`A="x" y`, `A: unexpected "y" after the closing quote`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseDotenv([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
