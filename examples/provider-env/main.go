// Command hush-provider-env is an example hush provider plugin, written
// as a third party would write one: against sdk/provider alone. It serves
// variables from its config block ("env:DB_PASSWORD"). See README.md.
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
