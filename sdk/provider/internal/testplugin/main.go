// Command testplugin serves memprovider as a plugin, for the SDK's process
// tests.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/hashicorp/go-hclog"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/internal/memprovider"
)

// panicReference is the reference that makes the plugin panic in Resolve,
// after it has resolved the rest of the batch.
const panicReference = "panic"

// panicky is memprovider with a Resolve that panics on panicReference, so
// that the process tests can see a panic recovered in a real plugin.
type panicky struct{ *memprovider.Provider }

func (p panicky) Resolve(ctx context.Context, req *provider.ResolveRequest) (*provider.ResolveResponse, error) {
	resp, err := p.Provider.Resolve(ctx, req)
	if slices.Contains(req.References, panicReference) {
		panic("test plugin asked to panic")
	}
	return resp, err
}

func main() {
	err := provider.Serve(func(logger hclog.Logger) provider.Provider {
		logger.Named("memory").Info("serving")
		return panicky{memprovider.New()}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
