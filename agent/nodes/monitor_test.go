package nodes

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/sdk/api"
)

// The monitor marks down a node silent past the TTL, and only that one.
func TestMonitorMarksSilentNodesDown(t *testing.T) {
	st := openStore(t)
	addNode(t, st, "quiet", "quiet", 0, nil)
	addNode(t, st, "busy", "busy", 0, nil)
	now := time.Now()
	m := &Monitor{Store: st, TTL: 3 * time.Second, Logger: hclog.NewNullLogger(), now: func() time.Time { return now }}
	m.check()
	for _, id := range []string{"quiet", "busy"} {
		if n, _ := st.FindNode(id); n.Status != api.NodeReady {
			t.Errorf("%s within the TTL: got %s, want ready", id, n.Status)
		}
	}
	now = now.Add(4 * time.Second)
	if err := st.NodeHeartbeat("busy", now.Add(-time.Second), api.NodeCapacity{}); err != nil {
		t.Fatal(err)
	}
	m.check()
	if n, _ := st.FindNode("quiet"); n.Status != api.NodeDown {
		t.Errorf("quiet past the TTL: got %s, want down", n.Status)
	}
	if n, _ := st.FindNode("busy"); n.Status != api.NodeReady {
		t.Errorf("busy, which heartbeat within the TTL: got %s, want ready", n.Status)
	}
	// A heartbeat brings it back.
	if err := st.NodeHeartbeat("quiet", now, api.NodeCapacity{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.FindNode("quiet"); n.Status != api.NodeReady {
		t.Errorf("quiet after a heartbeat: got %s, want ready", n.Status)
	}
}
