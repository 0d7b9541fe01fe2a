package runtime

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestEntrypointMainRefusesBadUse(t *testing.T) {
	tests := map[string]struct {
		args []string
		code int
		want string
	}{
		"no env file":     {[]string{"--", "true"}, 2, "--env-file is required"},
		"unknown flag":    {[]string{"--env", "x", "--", "true"}, 2, "flag provided but not defined: -env"},
		"missing file":    {[]string{"--env-file", filepath.Join(t.TempDir(), "none"), "--", "true"}, 127, "read secret environment"},
		"nothing to exec": {[]string{"--env-file", "/dev/null"}, 127, "no command to run"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := EntrypointMain(tc.args, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("got %d %q, want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
