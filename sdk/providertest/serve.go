// Package providertest helps authors test provider plugins: Serve runs a
// provider over real gRPC inside the test, LaunchProcess starts a plugin
// executable (in any language) as the agent does, and RunConformance and
// RunProcessConformance check that a provider keeps the promises the hush
// agent relies on.
package providertest

import (
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/hush-sh/hush/sdk/provider"
)

// Serve serves p over gRPC in this process, as the agent would reach it in a
// plugin process, and returns the host's side of the connection. The
// returned Provider is also a provider.Storer. The connection closes when
// the test ends.
func Serve(t testing.TB, p provider.Provider) provider.Provider {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, provider.PluginSet(func() provider.Provider { return p }))
	t.Cleanup(func() {
		// Server first: the client's Close asks the server to stop too, and
		// go-plugin races if both stop it at once.
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(provider.PluginName)
	if err != nil {
		t.Fatalf("dispense provider: %v", err)
	}
	prov, ok := raw.(provider.Provider)
	if !ok {
		t.Fatalf("dispense provider: got %T, want a provider.Provider", raw)
	}
	return prov
}
