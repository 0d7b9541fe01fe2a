package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/config"
	"github.com/hush-sh/hush/agent/seal"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// getrunMain measures the latency of `GET /v1/runs/{name}` (p50, p99) of
// one run among few and among many stored runs of its owner: for each
// binary and each count of runs, it starts the agent once to make a data
// dir, stops it, stores the runs in the data dir the way hush wrote them
// before runs had a name index (store format 2, which every agent since
// reads, migrating it), starts the agent again and asks for the run by
// name.
func getrunMain(args []string) error {
	fs := flag.NewFlagSet("getrun", flag.ContinueOnError)
	config := fs.String("config", "", "an agent config `FILE` to start each agent with")
	n := fs.Int("n", 2000, "requests per measure")
	runs := fs.String("runs", "10,10000", "the numbers of stored runs to measure with")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	counts, err := counts("runs", *runs)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: bench getrun [-config FILE] [-n 2000] [-runs 10,10000] HUSH [HUSH]", errUsage)
	}
	fmt.Printf("%-28s %8s %9s %9s\n", "binary", "runs", "p50 ms", "p99 ms")
	for _, hush := range fs.Args() {
		var first float64
		for i, count := range counts {
			p50, p99, err := benchGetRun(hush, *config, count, *n)
			if err != nil {
				return err
			}
			fmt.Printf("%-28s %8d %9.3f %9.3f\n", filepath.Base(hush), count, p50, p99)
			if i == 0 {
				first = p50
			} else {
				fmt.Printf("%-28s p50 with %d runs / with %d: %.2f\n", filepath.Base(hush), count, counts[0], p50/first)
			}
		}
	}
	return nil
}

// benchGetRun returns the p50 and p99 latencies, in milliseconds, of n
// gets of one run by name among count runs.
func benchGetRun(hush, config string, count, n int) (p50, p99 float64, err error) {
	work, err := os.MkdirTemp("", "hush-bench-getrun-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")
	// A first start makes the data dir, its keyring and its root token.
	a, err := startAgent(hush, data, config)
	if err != nil {
		return 0, 0, err
	}
	a.stop()
	if err := seedRuns(data, count); err != nil {
		return 0, 0, err
	}
	if a, err = startAgent(hush, data, config); err != nil {
		return 0, 0, err
	}
	defer a.stop()
	c := a.client(a.root, nil)
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
	return ms(lat[n/2]), ms(lat[n*99/100]), nil
}

// seed stores count ended runs of user root, the one in the middle named
// target, as store format 2 kept them: each the API's run, sealed whole
// under runs/<id>.
func seedRuns(data string, count int) error {
	// The agent wrapped the keyring with its default seal "file", whose
	// key lies beside the data dir.
	sl, err := seal.NewFile(data+config.DefaultSealKeySuffix, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	kr, err := store.ReadKeyring(filepath.Join(data, store.KeyringFile), sl)
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
