package runlog

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// filterAll writes parts through a filter of values and returns what
// comes out once it is closed.
func filterAll(values []string, parts ...string) string {
	var vs [][]byte
	for _, v := range values {
		vs = append(vs, []byte(v))
	}
	var out bytes.Buffer
	f := NewMasks(vs).filter(&out)
	for _, p := range parts {
		f.Write([]byte(p))
	}
	f.Close()
	return out.String()
}

func TestMaskFilter(t *testing.T) {
	secret := []string{"hunter22", "aHVudGVyMjI=", "longer-hunter22-form"}
	tests := map[string]struct {
		values []string
		parts  []string
		want   string
	}{
		"plain":                 {secret, []string{"pw=hunter22\n"}, "pw=***\n"},
		"base64 form":           {secret, []string{"echo aHVudGVyMjI= | base64 -d\n"}, "echo *** | base64 -d\n"},
		"inside a longer line":  {secret, []string{"a hunter22 b hunter22c\n"}, "a *** b ***c\n"},
		"split across writes":   {secret, []string{"pw=hun", "ter22\n"}, "pw=***\n"},
		"split byte by byte":    {secret, strings.Split("xhunter22y\n", ""), "x***y\n"},
		"the longest wins":      {secret, []string{"longer-hunter22-form\n"}, "***\n"},
		"a prefix that is not":  {secret, []string{"hunt", "ing\n"}, "hunting\n"},
		"held until the end":    {secret, []string{"last words: hunt"}, "last words: hunt"},
		"a newline ends a hold": {secret, []string{"hunt\n", "er22\n"}, "hunt\ner22\n"},
		"nothing to mask":       {nil, []string{"hunter22\n"}, "hunter22\n"},
		"a shorter value that starts a longer one split across writes": {[]string{"abcd", "abcdefgh"}, []string{"x abcde", "fgh y\n"}, "x *** y\n"},
		"a whole value inside a held start of another":                 {[]string{"aaaa-bbbb-long", "a-bbbb"}, []string{"aaaa-bbbb"}, "aaa***"},
		"values with a newline are left out":                           {[]string{"two\nlines"}, []string{"two\nlines\n"}, "two\nlines\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := filterAll(tt.values, tt.parts...); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The filter passes output that holds no value at once, byte for byte.
func TestMaskFilterHoldsBackNothingElse(t *testing.T) {
	var out bytes.Buffer
	f := NewMasks([][]byte{[]byte("hunter22")}).filter(&out)
	f.Write([]byte("progress 10%"))
	if out.String() != "progress 10%" {
		t.Errorf("got %q before the next write, want all of it", out.String())
	}
}

// filter returns a maskFilter of m alone.
func (m *Masks) filter(w io.Writer) *maskFilter {
	return &maskFilter{m: func() *Masks { return m }, w: w}
}
