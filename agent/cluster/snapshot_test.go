package cluster

import (
	"fmt"
	"testing"
	"time"
)

func TestSnapshotInstallOnLaggingFollower(t *testing.T) {
	ca := newTestCA(t)
	small := func(c *Config) {
		c.SnapshotThreshold = 10
		c.SnapshotInterval = 50 * time.Millisecond
		c.TrailingLogs = 5
	}
	servers := startCluster(t, ca, 3, small)
	leader := waitLeader(t, servers, 5*time.Second)
	lagging := followers(servers, leader)[0]
	lagging.stop()

	for i := range 50 {
		mustApply(t, leader.node, fmt.Sprintf("set k%d %d", i, i))
	}
	if err := leader.node.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, err := leader.node.store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Fatalf("got first log index %d after a snapshot, want the log compacted", first)
	}

	// The follower is behind the leader's log: it gets the snapshot,
	// restores it, then the log after it.
	lagging.node, lagging.http = nil, nil
	lagging.start(t, 3, small)
	mustApply(t, leader.node, "set last 1")
	if err := lagging.node.Barrier(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, restores := lagging.fsm.counts(); restores < 1 {
		t.Errorf("got %d restores on the lagging follower, want at least 1", restores)
	}
	if got, want := fmt.Sprint(lagging.fsm.kv()), fmt.Sprint(leader.fsm.kv()); got != want {
		t.Errorf("lagging follower: got state %s, want the leader's %s", got, want)
	}
	if got := lagging.fsm.AppliedIndex(); got < leader.fsm.AppliedIndex() {
		t.Errorf("got applied index %d, want at least the leader's %d", got, leader.fsm.AppliedIndex())
	}
}
