// Command hush-provider-exec is a hush provider plugin that resolves a
// reference by running a configured command, without a shell, and taking
// its output: a bridge to secret managers that ship a CLI. See
// plugins/README.md for its config.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/provider"
)

func main() {
	if err := provider.Serve(func(hclog.Logger) provider.Provider { return newProvider() }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
