// Package sdk_test checks that sdk/ stays importable on its own.
package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSDKImportsNothingInternal keeps sdk/ free of agent/, cli/ and
// containerd, so that plugin authors and other tools can import it without
// pulling in the daemon.
func TestSDKImportsNothingInternal(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hush-sh/hush/sdk/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/hush-sh/hush/agent", "github.com/hush-sh/hush/cli", "github.com/containerd/"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("sdk depends on %s", dep)
			}
		}
	}
}
