package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// electionBound is how long one election may take: raft's heartbeat and
// election timeouts (1 s each, randomised up to twice that), plus the
// clients' retries. A write may fail for no longer than this.
const electionBound = 5 * time.Second

// writeLog is what a writer that creates secrets without pause saw.
type writeLog struct {
	mu    sync.Mutex
	acked []string
	fails int
	// longestFail is the longest time from the start of a failed write to
	// the end of the next write that succeeded; longestGap, the longest
	// time between two acknowledgements.
	longestFail, longestGap time.Duration
	firstErr                error
}

// writeLoop creates secrets through c until ctx ends, one at a time,
// each under a new name, and records which were acknowledged and how
// long writes failed in a row.
func writeLoop(ctx context.Context, c *api.Client, w *writeLog) {
	lastAck := time.Now()
	var failingSince time.Time
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("roll-%d", i)
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := c.CreateSecret(rctx, &api.CreateSecretRequest{Name: name, Type: api.TypeEnv,
			Fields: map[string]string{api.FieldKey: "ROLL"}, Data: map[string][]byte{api.FieldValue: []byte("rolling-canary")}})
		cancel()
		now := time.Now()
		w.mu.Lock()
		switch {
		case err == nil:
			w.acked = append(w.acked, name)
			if failingSince != (time.Time{}) {
				w.longestFail = max(w.longestFail, now.Sub(failingSince))
				failingSince = time.Time{}
			}
			w.longestGap = max(w.longestGap, now.Sub(lastAck))
			lastAck = now
		case ctx.Err() == nil:
			w.fails++
			if w.firstErr == nil {
				w.firstErr = err
			}
			if failingSince == (time.Time{}) {
				failingSince = start
			}
		}
		w.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			// As a client with a retry policy would, not a hot loop.
			time.Sleep(50 * time.Millisecond)
		}
	}
	if failingSince != (time.Time{}) {
		// Still failing at the end: that counts too.
		w.mu.Lock()
		w.longestFail = max(w.longestFail, time.Since(failingSince))
		w.mu.Unlock()
	}
}

// waitInCluster waits until server i sees all the servers healthy under
// one leader, and has caught up: a consistent read on it answers.
func (c *servers) waitInCluster(i int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := c.hush(i, "server", "members", "-o", "json")
		var peers []struct {
			Healthy bool `json:"healthy"`
			Leader  bool `json:"leader"`
		}
		healthy, leaders := 0, 0
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &peers) == nil {
			for _, p := range peers {
				if p.Healthy {
					healthy++
				}
				if p.Leader {
					leaders++
				}
			}
		}
		if healthy == len(c.agents) && leaders == 1 && c.hush(i, "get", "secrets", "-o", "name").code == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("s%d is not back in the cluster %s after its restart: %s", i+1, within, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A rolling restart of all three servers, one at a time with SIGTERM,
// while a client writes without pause through all three addresses: no
// write fails for longer than one election, since a leader hands its
// leadership over as it stops, and every acknowledged write is on every
// server at the end.
func TestServersRollingRestart(t *testing.T) {
	c := startServers(t, 3)
	var addrs []string
	for _, a := range c.agents {
		addrs = append(addrs, a.addr)
	}
	client, err := api.NewClient(&api.Config{Address: strings.Join(addrs, ","), Token: c.agents[0].token,
		TLS: api.TLSFiles{CACert: c.pki.ca + ".pem", ClientCert: c.pki.client + ".pem", ClientKey: c.pki.client + "-key.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeLog{}
	done := make(chan struct{})
	go func() { defer close(done); writeLoop(ctx, client, w) }()
	defer func() { cancel(); <-done }()

	acked := func() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }
	waitWrites := func(n int) {
		t.Helper()
		want := acked() + n
		for deadline := time.Now().Add(20 * time.Second); acked() < want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the writer made no progress in 20s: %d acknowledged, %d failed", acked(), w.fails)
			}
		}
	}
	waitWrites(20)
	// The leader first, so that its handover is surely part of the
	// roll; the others in turn, one of which then leads.
	lead := c.leader(0)
	if lead < 0 {
		t.Fatal("no leader")
	}
	order := []int{lead, (lead + 1) % 3, (lead + 2) % 3}
	for _, i := range order {
		before := c.leader((i + 1) % 3)
		stopped := time.Now()
		c.agents[i].stop()
		if i == before && !strings.Contains(c.agents[i].stderr.String(), "handed leadership over before shutting down") {
			t.Errorf("leader s%d stopped without handing its leadership over; its log:\n%s", i+1, c.agents[i].stderr)
		}
		c.restart(i)
		c.waitInCluster(i, 30*time.Second)
		t.Logf("s%d (leader before: s%d) stopped and back in %s; %d writes acknowledged so far", i+1, before+1, time.Since(stopped).Round(time.Millisecond), acked())
		waitWrites(20)
	}
	cancel()
	<-done

	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("rolling restart: %d writes acknowledged, %d failed; longest run of failures %s, longest time between acknowledgements %s (bound %s)",
		len(w.acked), w.fails, w.longestFail.Round(time.Millisecond), w.longestGap.Round(time.Millisecond), electionBound)
	if w.longestFail > electionBound {
		t.Errorf("writes failed for %s in a row, want at most %s (one election); first error: %v", w.longestFail, electionBound, w.firstErr)
	}
	if w.longestGap > electionBound {
		t.Errorf("no write was acknowledged for %s, want at most %s (one election)", w.longestGap, electionBound)
	}
	for i := range 3 {
		listed := map[string]bool{}
		for _, n := range strings.Fields(c.names(i)) {
			listed[n] = true
		}
		var missing []string
		for _, n := range w.acked {
			if !listed[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			t.Errorf("s%d lacks %d of %d acknowledged writes, such as %v", i+1, len(missing), len(w.acked), missing[:min(5, len(missing))])
		}
	}
}
