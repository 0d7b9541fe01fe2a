// Command hush-provider-exec is a hush provider plugin that resolves a
// reference by running a configured command, without a shell, and taking
// its output: a bridge to secret managers that ship a CLI. See
// plugins/README.md for its config.
package main

import "github.com/hush-sh/hush/sdk/provider"

func main() {
	provider.Serve(func() provider.Provider { return newProvider() })
}
