package server

import (
	"context"
	"errors"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
)

// TestSelfCapacity: /v1/agent/self carries the node's capacity, and a run
// that asks for more than the node has is refused with 400 and what there
// is.
func TestSelfCapacity(t *testing.T) {
	st, srv := newTestServer(t)
	c := client(t, st, srv, "alice")
	self, err := c.Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := self.Capacity
	if got == nil || got.GPUs != 0 || got.CPUs != float64(goruntime.NumCPU()) || got.CPUsFree != got.CPUs ||
		got.MemoryBytes <= 0 || got.MemoryFreeBytes != got.MemoryBytes || got.ActiveRuns != 0 {
		t.Errorf("got capacity %+v, want the host's CPUs and memory, all free, no GPUs", got)
	}
	_, err = c.CreateRun(context.Background(), &api.CreateRunRequest{Name: "big", Command: "true", GPUs: 1, CPUs: 1e6})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 ||
		!strings.Contains(apiErr.Message, "the run asks for 1 GPU, but this node has none (the exec runtime gives runs no GPUs)") ||
		!strings.Contains(apiErr.Message, "the run asks for 1000000 CPUs, but this node has") {
		t.Errorf("got %v, want 400 naming GPUs and CPUs", err)
	}
}
