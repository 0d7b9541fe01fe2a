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

// TestFleetHasNoUI keeps sdk/fleet an engine other programs can use: of
// this module it imports only sdk/api, sdk/spec and sdk/userfile, and
// nothing that talks to a terminal or parses a command line.
func TestFleetHasNoUI(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "github.com/hush-sh/hush/sdk/fleet").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/hush-sh/hush/sdk/api":      true,
		"github.com/hush-sh/hush/sdk/spec":     true,
		"github.com/hush-sh/hush/sdk/userfile": true,
	}
	for _, imp := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(imp, "github.com/hush-sh/hush/") && !allowed[imp]:
			t.Errorf("sdk/fleet imports %s; it may import only sdk/api, sdk/spec and sdk/userfile of hush", imp)
		case strings.HasPrefix(imp, "github.com/urfave/cli"), strings.HasPrefix(imp, "golang.org/x/term"):
			t.Errorf("sdk/fleet imports %s: it has no command line or terminal; the CLI renders what it returns", imp)
		}
	}
}
