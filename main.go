// Command hush is both the hush CLI and the per-node agent (`hush agent`).
package main

import (
	"os"

	"github.com/hush-sh/hush/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(cli.Main(version))
}
