// Command hush-provider-env is an example hush provider plugin, written
// as a third party would write one: against sdk/provider alone. It serves
// variables from its config block ("env:DB_PASSWORD"). See README.md.
package main

import "github.com/hush-sh/hush/sdk/provider"

func main() {
	provider.Serve(func() provider.Provider { return newProvider() })
}
