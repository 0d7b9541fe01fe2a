package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// createsMain measures secret creates per second, and the p50 and p99 of
// their latency, with each number of concurrent clients.
func createsMain(args []string) error {
	fs := flag.NewFlagSet("creates", flag.ContinueOnError)
	config := fs.String("config", "", "an agent config `FILE` to start each agent with")
	n := fs.Int("n", 2000, "creates per number of clients")
	clients := fs.String("clients", "1,32", "the numbers of concurrent clients to measure")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	counts, err := counts("clients", *clients)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: bench creates [-config FILE] [-n 2000] [-clients 1,32] HUSH [HUSH]", errUsage)
	}
	fmt.Printf("%-28s %8s %12s %9s %9s\n", "binary", "clients", "creates/s", "p50 ms", "p99 ms")
	for _, hush := range fs.Args() {
		if err := benchCreates(hush, *config, *n, counts); err != nil {
			return err
		}
	}
	return nil
}

func benchCreates(hush, config string, n int, counts []int) error {
	work, err := os.MkdirTemp("", "hush-bench-creates-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	a, err := startAgent(hush, filepath.Join(work, "data"), config)
	if err != nil {
		return err
	}
	defer a.stop()
	token, err := a.token("alice")
	if err != nil {
		return err
	}
	c := a.client(token, &http.Transport{MaxIdleConnsPerHost: 256})
	for _, clients := range counts {
		start := time.Now()
		lat, err := createMany(c, n, clients, func(i int) *api.CreateSecretRequest {
			return &api.CreateSecretRequest{
				Name: fmt.Sprintf("c%d-%d", clients, i), Type: api.TypeEnv,
				Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("bench-value")},
			}
		})
		if err != nil {
			return err
		}
		rate := float64(n) / time.Since(start).Seconds()
		slices.Sort(lat)
		fmt.Printf("%-28s %8d %12.0f %9.2f %9.2f\n", filepath.Base(hush), clients, rate, ms(lat[n/2]), ms(lat[n*99/100]))
	}
	return nil
}

// createMany creates the n secrets that req makes, from workers goroutines
// at once, and returns the latency of each create.
func createMany(c *api.Client, n, workers int, req func(i int) *api.CreateSecretRequest) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				if _, err := c.CreateSecret(context.Background(), req(i)); err != nil {
					errs <- fmt.Errorf("create secret %d: %w", i, err)
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	var err error
	for i := 0; i < n && err == nil; i++ {
		select {
		case next <- i:
		case err = <-errs:
		}
	}
	close(next)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return lat, err
}

// ms renders a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
