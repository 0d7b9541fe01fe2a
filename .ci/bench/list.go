package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// listMain measures the memory an agent uses to list secrets: it gives
// user alice many small secrets and user bob 1 MiB ones, restarts the
// agent so that its peak RSS counts only what follows, and reports the
// agent's RSS before, during (sampled, and VmHWM) and after concurrent
// `GET /v1/secrets`.
func listMain(args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	hush := fs.String("hush", "", "the hush `BINARY` to measure")
	config := fs.String("config", "", "an agent config `FILE` to start the agent with")
	small := fs.Int("small", 20000, "small secrets for alice")
	big := fs.Int("big", 100, "1 MiB secrets for bob")
	lists := fs.Int("lists", 8, "concurrent lists")
	rounds := fs.Int("rounds", 3, "rounds of concurrent lists")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *hush == "" {
		return fmt.Errorf("%w: bench list -hush PATH/TO/hush", errUsage)
	}
	work, err := os.MkdirTemp("", "hush-bench-list-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")
	alice, bob, err := seedSecrets(*hush, data, *config, *small, *big)
	if err != nil {
		return err
	}
	if err := measureLists(*hush, data, *config, "alice", alice, *small, *lists, *rounds); err != nil {
		return err
	}
	return measureLists(*hush, data, *config, "bob", bob, *big, *lists, *rounds)
}

// seedSecrets gives alice small secrets and bob big ones of 1 MiB, and
// returns their tokens.
func seedSecrets(hush, data, config string, small, big int) (alice, bob string, err error) {
	a, err := startAgent(hush, data, config)
	if err != nil {
		return "", "", err
	}
	defer a.stop()
	if alice, err = a.token("alice"); err != nil {
		return "", "", err
	}
	if bob, err = a.token("bob"); err != nil {
		return "", "", err
	}
	t0 := time.Now()
	mounted := func(size int) func(int) *api.CreateSecretRequest {
		value := []byte(strings.Repeat("v", size))
		return func(i int) *api.CreateSecretRequest {
			return &api.CreateSecretRequest{Name: fmt.Sprintf("bench-%06d", i), Type: api.TypeMounted, Data: map[string][]byte{api.FieldValue: value}}
		}
	}
	if _, err := createMany(a.client(alice, nil), small, 16, mounted(1)); err != nil {
		return "", "", err
	}
	if _, err := createMany(a.client(bob, nil), big, 4, mounted(api.MaxSecretSize)); err != nil {
		return "", "", err
	}
	fmt.Printf("setup: %d small secrets for alice, %d of 1 MiB for bob in %s\n", small, big, time.Since(t0).Round(time.Second))
	return alice, bob, nil
}

// measureLists restarts the agent and lists user's secrets, lists at a
// time, rounds times, sampling its RSS.
func measureLists(hush, data, config, user, token string, want, lists, rounds int) error {
	a, err := startAgent(hush, data, config)
	if err != nil {
		return err
	}
	defer a.stop()
	time.Sleep(200 * time.Millisecond)
	before := a.status("VmRSS")
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if rss := a.status("VmRSS"); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	t0 := time.Now()
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, lists)
		for range lists {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- listOnce(a.addr, token, want)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
	}
	elapsed := time.Since(t0)
	close(stop)
	<-sampled
	fmt.Printf("%-5s %6d secrets, %d x %d concurrent lists in %-8s RSS before %4d MB, peak sampled %4d MB, VmHWM %4d MB, after %4d MB\n",
		user, want, rounds, lists, elapsed.Round(time.Millisecond), before>>10, peak.Load()>>10, a.status("VmHWM")>>10, a.status("VmRSS")>>10)
	return nil
}

// listOnce lists the secrets and checks that there are want of them,
// counting them as the answer streams in, without holding it.
func listOnce(addr, token string, want int) error {
	req, _ := http.NewRequest(http.MethodGet, addr+"/v1/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("list: %d %s", resp.StatusCode, b)
	}
	dec := json.NewDecoder(resp.Body)
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if tok == "name" {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("list: got %d secrets, want %d", n, want)
	}
	return nil
}
