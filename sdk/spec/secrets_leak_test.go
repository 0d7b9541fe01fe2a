package spec

import (
	"strings"
	"testing"
)

// Values that YAML reads as an anchor or a tag stay out of a secrets
// file's errors.
func TestSecretsFileErrorsHideAnchorsAndTags(t *testing.T) {
	for name, src := range map[string]string{
		"anchor": "secrets:\n  - type: env\n    name: a\n    key: A\n    value: *Passw0rdAnchor\n",
		"tag":    "secrets:\n  - type: env\n    name: a\n    key: A\n    value: !Passw0rdTag x\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseSecrets("s.yaml", []byte(src), func(string) (string, bool) { return "", false })
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if strings.Contains(err.Error(), "Passw0rd") {
				t.Errorf("got %q, which shows the value", err)
			}
			if !strings.Contains(err.Error(), "must be in quotes") {
				t.Errorf("got %q, want a hint to quote the value", err)
			}
		})
	}
}
