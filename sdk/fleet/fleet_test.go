package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var errBroken = errors.New("read token_file: no such file")

func TestFanOut(t *testing.T) {
	f := &Fleet{Timeout: 200 * time.Millisecond}
	for i := range 40 {
		f.Clusters = append(f.Clusters, &Cluster{Name: fmt.Sprintf("c%d", i)})
	}
	f.Clusters[9].Broken = errBroken
	var running, most atomic.Int32
	results := FanOut(context.Background(), f, f.Clusters, func(ctx context.Context, c *Cluster) (string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if c.Name == "c7" {
			// What the HTTP client returns when a request times out.
			return "", &url.Error{Op: "Get", URL: "http://c7/v1/secrets", Err: context.DeadlineExceeded}
		}
		time.Sleep(5 * time.Millisecond)
		return c.Name, nil
	})
	if got := most.Load(); got > MaxFanOut {
		t.Errorf("got %d clusters at once, want at most %d", got, MaxFanOut)
	}
	for i, r := range results {
		want := fmt.Sprintf("c%d", i)
		switch {
		case r.Cluster.Name != want:
			t.Errorf("result %d is for %s, want %s: results keep cluster order", i, r.Cluster.Name, want)
		case want == "c7":
			if r.Err == nil || !strings.Contains(r.Err.Error(), "no answer within 200ms") {
				t.Errorf("the hung cluster: got %v, want no answer within 200ms", r.Err)
			}
		case want == "c9":
			if !errors.Is(r.Err, errBroken) {
				t.Errorf("the Broken cluster: got %v, want its config error", r.Err)
			}
		case r.Err != nil || r.Value != want:
			t.Errorf("cluster %s: got %q, %v", want, r.Value, r.Err)
		}
	}
}
