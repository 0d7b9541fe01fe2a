package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkApply measures replicated writes from 8 concurrent writers: on
// a single node, and on a 3-server cluster through a follower (forwarded)
// and on the leader. Keys cycle over 100 so that the test FSM, which
// rewrites its whole state per command, costs the same throughout.
func BenchmarkApply(b *testing.B) {
	run := func(b *testing.B, n *Node) {
		var seq atomic.Int64
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := n.Apply(b.Context(), []byte(fmt.Sprintf("set k%d v", seq.Add(1)%100))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("single", func(b *testing.B) {
		dir := b.TempDir()
		n, err := New(Config{NodeID: "one", DataDir: dir}, newTestFSM(b, dir), testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		defer n.Shutdown()
		run(b, n)
	})
	for _, via := range []string{"leader", "follower"} {
		b.Run("cluster3-"+via, func(b *testing.B) {
			servers := startCluster(b, newTestCA(b), 3, nil)
			leader := waitLeader(b, servers, 5*time.Second)
			n := leader.node
			if via == "follower" {
				n = followers(servers, leader)[0].node
			}
			run(b, n)
		})
	}
}
