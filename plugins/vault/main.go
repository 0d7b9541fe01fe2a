// Command hush-provider-vault is a hush provider plugin that reads secrets
// from HashiCorp Vault's KV secrets engine (version 1 or 2), logging in
// with a token or AppRole. See plugins/README.md for its config.
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
