package api

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The hand-written checks accept exactly what the regular expressions
// they replace accepted, on strings made of the characters that matter.
func TestNamesMatchTheirRegexps(t *testing.T) {
	checks := map[string]struct {
		re *regexp.Regexp
		fn func(string) bool
	}{
		"secret":    {regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`), func(s string) bool { return IsName(s, 253, ".-") }},
		"user":      {regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`), func(s string) bool { return IsName(s, 64, "._-") }},
		"env key":   {regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`), isEnvKey},
		"profile":   {regexp.MustCompile(`^[A-Za-z0-9_.-]+$`), isProfile},
		"reference": {regexp.MustCompile(`^[a-z0-9][a-z0-9-]*:.+$`), isReference},
	}
	const alphabet = "az09AZ._-:/ \n#é"
	r := rand.New(rand.NewPCG(1, 2))
	for name, c := range checks {
		t.Run(name, func(t *testing.T) {
			for i := range 20000 {
				n := r.IntN(8)
				if i%50 == 0 {
					n = 60 + r.IntN(200) // around the length limits
				}
				var b strings.Builder
				for range n {
					b.WriteByte(alphabet[r.IntN(len(alphabet))])
				}
				s := b.String()
				if i%50 == 0 {
					s = strings.Repeat("a", n) // long and otherwise valid
				}
				if got, want := c.fn(s), c.re.MatchString(s); got != want {
					t.Fatalf("%q: got %v, want %v", s, got, want)
				}
			}
		})
	}
}
