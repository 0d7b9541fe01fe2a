// Command hush is both the hush CLI and the per-node agent (`hush agent`).
package main

import (
	"os"

	"github.com/hush-sh/hush/agent/runlog"
	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	// Every run starts through the entrypoint, and a containerd run's
	// output goes through the logger: dispatched first, as they need none
	// of the command line's set-up.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case runtime.EntrypointCommand:
			os.Exit(runtime.EntrypointMain(os.Args[2:], os.Stderr))
		case runtime.SuperviseCommand:
			os.Exit(runtime.SuperviseMain(os.Args[2:], os.Stderr))
		case runlog.LoggerCommand:
			os.Exit(runlog.LoggerMain(os.Args[2:], os.Stderr))
		}
	}
	os.Exit(cli.Main(version))
}
