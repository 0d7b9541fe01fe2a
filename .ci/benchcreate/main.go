// Command benchcreate measures how many secrets an agent creates per
// second, with one client and with many at once, and the latency of each
// create (p50, p99): it starts `hush agent` on loopback for each binary it
// is given, in turn, so that binaries compare in one run on one machine.
// .ci/bench-creates runs it.
//
// Usage: go run ./.ci/benchcreate [-config FILE] [-n 2000] [-clients 1,32] HUSH...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

func main() {
	config := flag.String("config", "", "an agent config `FILE` to start each agent with")
	n := flag.Int("n", 2000, "creates per client count")
	clients := flag.String("clients", "1,32", "the numbers of concurrent clients to measure")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchcreate [-config FILE] [-n 2000] [-clients 1,32] HUSH...")
		os.Exit(2)
	}
	var counts []int
	for _, c := range strings.Split(*clients, ",") {
		k, err := strconv.Atoi(c)
		if err != nil || k < 1 {
			fmt.Fprintf(os.Stderr, "benchcreate: -clients: %q is not a number of clients\n", c)
			os.Exit(2)
		}
		counts = append(counts, k)
	}
	fmt.Printf("%-28s %8s %12s %9s %9s\n", "binary", "clients", "creates/s", "p50 ms", "p99 ms")
	for _, hush := range flag.Args() {
		if err := bench(hush, *config, *n, counts); err != nil {
			fmt.Fprintln(os.Stderr, "benchcreate:", err)
			os.Exit(1)
		}
	}
}

func bench(hush, config string, n int, counts []int) error {
	work, err := os.MkdirTemp("", "hush-benchcreate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	args := []string{"agent", "-data-dir", filepath.Join(work, "data"), "-bind", "127.0.0.1:0", "-log-json"}
	if config != "" {
		args = append(args, "-config", config)
	}
	cmd := exec.Command(hush, args...)
	addr, err := start(cmd)
	if err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	root, err := os.ReadFile(filepath.Join(work, "data", "root.token"))
	if err != nil {
		return err
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	newClient := func(token string) *api.Client {
		c, _ := api.NewClient(&api.Config{Address: addr, Token: token, HTTPClient: &http.Client{Transport: transport, Timeout: time.Minute}})
		return c
	}
	tok, err := newClient(strings.TrimSpace(string(root))).CreateToken(context.Background(), &api.CreateTokenRequest{User: "alice"})
	if err != nil {
		return err
	}
	c := newClient(tok.Secret)
	for _, clients := range counts {
		rate, p50, p99, err := creates(c, clients, n, fmt.Sprintf("c%d-", clients))
		if err != nil {
			return err
		}
		fmt.Printf("%-28s %8d %12.0f %9.2f %9.2f\n", filepath.Base(hush), clients, rate, p50, p99)
	}
	return nil
}

// creates makes n secrets from clients goroutines at once and returns the
// rate and the 50th and 99th percentile latencies in milliseconds.
func creates(c *api.Client, clients, n int, prefix string) (rate, p50, p99 float64, err error) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				_, err := c.CreateSecret(context.Background(), &api.CreateSecretRequest{
					Name: prefix + strconv.Itoa(i), Type: api.TypeEnv,
					Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("bench-value")},
				})
				if err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return 0, 0, 0, err
		}
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	select {
	case err := <-errs:
		return 0, 0, 0, err
	default:
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return float64(n) / took.Seconds(), ms(lat[n/2]), ms(lat[n*99/100]), nil
}

// start starts the agent and returns its address once it serves.
func start(cmd *exec.Cmd) (string, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	started := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["@message"] == "agent started" {
				started <- line["addr"].(string)
			} else if log.Len() < 4096 {
				log.WriteString(sc.Text() + "\n")
			}
		}
	}()
	select {
	case addr := <-started:
		return addr, nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return "", fmt.Errorf("agent did not start:\n%s", log.String())
	}
}
