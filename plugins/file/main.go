// Command hush-provider-file is a hush provider plugin that reads secrets
// from files on the agent's host: one file per secret in a directory, the
// keys of a dotenv file, or the keys of a JSON file. In directory mode it
// can also store them. See plugins/README.md for its config.
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
