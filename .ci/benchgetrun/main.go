// Command benchgetrun measures the latency of `GET /v1/runs/{name}` (p50,
// p99) of one run among few and among many stored runs of its owner: for
// each binary it is given and each count of runs, it starts `hush agent`
// on loopback once to make a data dir, stops it, stores the runs in the
// data dir the way hush wrote them before runs had a name index (store
// format 2, which every agent since reads, migrating it), starts the agent
// again and asks for the run by name. .ci/bench-getrun runs it.
//
// Usage: go run ./.ci/benchgetrun [-config FILE] [-n 2000] [-runs 10,10000] HUSH...
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
	"syscall"
	"time"

	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

func main() {
	config := flag.String("config", "", "an agent config `FILE` to start each agent with")
	n := flag.Int("n", 2000, "requests per measure")
	runs := flag.String("runs", "10,10000", "the numbers of stored runs to measure with")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchgetrun [-config FILE] [-n 2000] [-runs 10,10000] HUSH...")
		os.Exit(2)
	}
	var counts []int
	for _, c := range strings.Split(*runs, ",") {
		k, err := strconv.Atoi(c)
		if err != nil || k < 1 {
			fmt.Fprintf(os.Stderr, "benchgetrun: -runs: %q is not a number of runs\n", c)
			os.Exit(2)
		}
		counts = append(counts, k)
	}
	fmt.Printf("%-28s %8s %9s %9s\n", "binary", "runs", "p50 ms", "p99 ms")
	for _, hush := range flag.Args() {
		var first float64
		for i, count := range counts {
			p50, p99, err := bench(hush, *config, count, *n)
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchgetrun:", err)
				os.Exit(1)
			}
			fmt.Printf("%-28s %8d %9.3f %9.3f\n", filepath.Base(hush), count, p50, p99)
			if i == 0 {
				first = p50
			} else {
				fmt.Printf("%-28s p50 with %d runs / with %d: %.2f\n", filepath.Base(hush), count, counts[0], p50/first)
			}
		}
	}
}

// bench returns the p50 and p99 latencies, in milliseconds, of n gets of
// one run by name among count runs.
func bench(hush, config string, count, n int) (p50, p99 float64, err error) {
	work, err := os.MkdirTemp("", "hush-benchgetrun-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")
	args := []string{"agent", "-data-dir", data, "-bind", "127.0.0.1:0", "-log-json"}
	if config != "" {
		args = append(args, "-config", config)
	}
	// A first start makes the data dir, its keyring and its root token.
	cmd := exec.Command(hush, args...)
	if _, err := start(cmd); err != nil {
		return 0, 0, err
	}
	stop(cmd)
	if err := seed(data, count); err != nil {
		return 0, 0, err
	}
	cmd = exec.Command(hush, args...)
	addr, err := start(cmd)
	if err != nil {
		return 0, 0, err
	}
	defer stop(cmd)
	root, err := os.ReadFile(filepath.Join(data, store.RootTokenFile))
	if err != nil {
		return 0, 0, err
	}
	c, err := api.NewClient(&api.Config{Address: addr, Token: strings.TrimSpace(string(root)),
		HTTPClient: &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}})
	if err != nil {
		return 0, 0, err
	}
	ctx := context.Background()
	for range 50 {
		if _, err := c.GetRun(ctx, "target"); err != nil {
			return 0, 0, err
		}
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		t := time.Now()
		if _, err := c.GetRun(ctx, "target"); err != nil {
			return 0, 0, err
		}
		lat[i] = time.Since(t)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return ms(lat[n/2]), ms(lat[n*99/100]), nil
}

// seed stores count ended runs of user root, the one in the middle named
// target, as store format 2 kept them: each the API's run, sealed whole
// under runs/<id>.
func seed(data string, count int) error {
	kr, err := store.LoadKeyring(filepath.Join(data, store.KeyringFile))
	if err != nil {
		return err
	}
	db, err := bolt.Open(filepath.Join(data, store.DBFile), 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket([]byte("runs"))
		if runs == nil {
			return fmt.Errorf("the data dir holds no runs bucket")
		}
		t0 := time.Now().UTC().Add(-time.Hour)
		for i := range count {
			name := "bench-" + strconv.Itoa(i)
			if i == count/2 {
				name = "target"
			}
			created := t0.Add(time.Duration(i) * time.Millisecond)
			code := 0
			run := &api.Run{
				ID: ulid.MustNew(ulid.Timestamp(created), nil).String(), Name: name, Owner: "root",
				Image: "busybox", Command: "echo hello", Runtime: "exec", Status: api.RunCompleted, ExitCode: &code,
				CreatedAt: created, StartedAt: &created, EndedAt: &created,
				Events: []api.RunEvent{
					{Time: created, Type: "submitted", Message: "submitted"},
					{Time: created, Type: "secrets", Message: "resolved 0 secret(s): "},
					{Time: created, Type: "started", Message: "started on exec"},
					{Time: created, Type: "exited", Message: "exited with code 0"},
				},
			}
			plain, err := json.Marshal(run)
			if err != nil {
				return err
			}
			sealed, err := kr.Seal(plain, []byte("runs/"+run.ID))
			if err != nil {
				return err
			}
			if err := runs.Put([]byte(run.ID), sealed); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{2})
	})
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
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return "", fmt.Errorf("agent did not start:\n%s", log.String())
	}
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}
