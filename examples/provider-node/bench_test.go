package providernode_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

// BenchmarkResolveVsHealth times one Resolve of one reference through the
// node plugin against a bare health check (go-plugin's Ping) to the same
// process over the same mTLS connection, interleaved so that both see the
// same machine; the difference is the provider's own cost in node.
//
//	go test -run '^$' -bench ResolveVsHealth ./examples/provider-node/
func BenchmarkResolveVsHealth(b *testing.B) {
	client, _ := providertest.LaunchClient(b, plugin())
	rpc, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := rpc.Dispense(provider.PluginName)
	if err != nil {
		b.Fatal(err)
	}
	p := raw.(provider.Provider)
	ctx := context.Background()
	if _, err := p.Configure(ctx, &provider.ConfigureRequest{APIVersion: provider.APIVersion, Config: []byte(`{"vars": {"DB_PASSWORD": "hunter2"}}`)}); err != nil {
		b.Fatal(err)
	}
	req := &provider.ResolveRequest{References: []string{"DB_PASSWORD"}}
	var resolve, health []time.Duration
	for b.Loop() {
		start := time.Now()
		resp, err := p.Resolve(ctx, req)
		if err != nil || resp.Results[0].Err != nil {
			b.Fatalf("Resolve: got %v, want a value", err)
		}
		resolve = append(resolve, time.Since(start))
		start = time.Now()
		if err := rpc.Ping(); err != nil {
			b.Fatalf("Ping: %v", err)
		}
		health = append(health, time.Since(start))
	}
	for name, took := range map[string][]time.Duration{"resolve": resolve, "health": health} {
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds()), name+"-p50-us")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), name+"-p99-us")
	}
}
