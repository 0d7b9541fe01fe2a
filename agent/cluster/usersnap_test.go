package cluster

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func TestUserSnapshotSaveRestore(t *testing.T) {
	ca := newTestCA(t)
	servers := startCluster(t, ca, 3, nil)
	leader := waitLeader(t, servers, 5*time.Second)
	fs := followers(servers, leader)

	mustApply(t, leader.node, "set early 1")
	var snap bytes.Buffer
	// A follower saves what the leader acknowledged before.
	if err := fs[0].node.SaveSnapshot(t.Context(), &snap); err != nil {
		t.Fatalf("save on a follower: %v", err)
	}
	mustApply(t, leader.node, "set late 2")

	// The other follower passes the restore on to the leader.
	if err := fs[1].node.RestoreSnapshot(t.Context(), bytes.NewReader(snap.Bytes()), int64(snap.Len())); err != nil {
		t.Fatalf("restore through a follower: %v", err)
	}
	mustApply(t, leader.node, "set after 3")
	want := fmt.Sprint(map[string]string{"early": "1", "after": "3"})
	for _, s := range servers {
		if err := s.node.Barrier(t.Context()); err != nil {
			t.Fatalf("%s: %v", s.id, err)
		}
		if got := fmt.Sprint(s.fsm.kv()); got != want {
			t.Errorf("%s: got state %s after the restore, want %s", s.id, got, want)
		}
		if _, _, restores := s.fsm.counts(); restores < 1 {
			t.Errorf("%s: got %d restores, want at least 1", s.id, restores)
		}
	}
}
