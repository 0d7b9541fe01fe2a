// Command testplugin serves memprovider as a plugin, for the SDK's process
// tests.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/internal/memprovider"
)

func main() {
	provider.Serve(func() provider.Provider {
		// Made here, the logger writes to the stderr the host reads.
		logger := hclog.New(&hclog.LoggerOptions{Name: "memory", Output: os.Stderr, JSONFormat: true})
		logger.Info("serving")
		return memprovider.New()
	})
}
