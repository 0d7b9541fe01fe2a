package provider_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/provider/internal/memprovider"
)

// The benchmarks compare a Resolve through a real plugin process (gRPC
// with mTLS over a unix socket) against the same provider called in
// process; report them as ratios with benchstat.

func benchProviders(b *testing.B) map[string]provider.Provider {
	b.Helper()
	client := plugin.NewClient(clientConfig(testPlugin, io.Discard))
	b.Cleanup(client.Kill)
	remote, err := dispense(client)
	if err != nil {
		b.Fatal(err)
	}
	local := memprovider.New()
	for _, p := range []provider.Provider{remote, local} {
		if _, err := p.Configure(context.Background(), &provider.ConfigureRequest{APIVersion: 1, Config: []byte("{}")}); err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if _, err := p.(provider.Storer).Put(context.Background(), &provider.PutRequest{Reference: fmt.Sprintf("k%d", i), Value: []byte("value")}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return map[string]provider.Provider{"process": remote, "inprocess": local}
}

func BenchmarkResolve(b *testing.B) {
	providers := benchProviders(b)
	batch := make([]string, 100)
	for i := range batch {
		batch[i] = fmt.Sprintf("k%d", i)
	}
	for _, where := range []string{"inprocess", "process"} {
		p := providers[where]
		b.Run("single/"+where, func(b *testing.B) {
			req := &provider.ResolveRequest{References: []string{"k1"}}
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := p.Resolve(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
		})
		b.Run("batch100/"+where, func(b *testing.B) {
			req := &provider.ResolveRequest{References: batch}
			for b.Loop() {
				if _, err := p.Resolve(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "refs/s")
		})
	}
}

// BenchmarkResolveAgainstPing measures, on one plugin process, a Resolve
// of one reference against go-plugin's bare gRPC round trip, its health
// check, in the same run: what the provider protocol adds to gRPC.
func BenchmarkResolveAgainstPing(b *testing.B) {
	client := plugin.NewClient(clientConfig(testPlugin, io.Discard))
	b.Cleanup(client.Kill)
	p, err := dispense(client)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Configure(ctx, &provider.ConfigureRequest{APIVersion: 1, Config: []byte("{}")}); err != nil {
		b.Fatal(err)
	}
	if _, err := p.(provider.Storer).Put(ctx, &provider.PutRequest{Reference: "k1", Value: []byte("value")}); err != nil {
		b.Fatal(err)
	}
	rpc, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	calls := map[string]func() error{
		"ping": rpc.Ping,
		"resolve": func() error {
			_, err := p.Resolve(ctx, &provider.ResolveRequest{References: []string{"k1"}})
			return err
		},
	}
	for _, name := range []string{"ping", "resolve"} {
		call := calls[name]
		b.Run(name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := call(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
