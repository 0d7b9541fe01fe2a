package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultNet stands between a cluster's servers on their raft port: each
// server advertises its proxy's address, so every raft connection between
// two servers passes through the proxy of the server it was dialed to.
// cut isolates one server, both ways, until heal: its proxy refuses and
// closes every connection, and the other proxies refuse and close those
// that server dialed. A proxy learns which server dialed it from the
// process that owns the connection's other end (/proc), since every
// server dials from 127.0.0.1 and presents the same certificate.
//
// Only raft traffic is cut: the servers' APIs, which forward writes and
// read indexes to the leader, stay reachable, as they would be across a
// partition of a cluster's replication network.
type faultNet struct {
	t       *testing.T
	proxies []*faultProxy

	mu    sync.Mutex
	pids  []int // each server's process, for telling who dialed
	cut   int   // the isolated server, or -1
	conns map[*proxyConn]struct{}
	// refused counts the connections refused or closed by a cut;
	// strangers those whose dialer was not found.
	refused, strangers int
}

// proxyConn is one proxied connection: from server src (-1 when not
// known) to server dst.
type proxyConn struct {
	src, dst  int
	down, up  net.Conn
	closeOnce sync.Once
}

func (c *proxyConn) close() {
	c.closeOnce.Do(func() { c.down.Close(); c.up.Close() })
}

// faultProxy listens for server dst's raft connections and forwards them
// to its raft_bind address.
type faultProxy struct {
	ln     net.Listener
	target string
	dst    int
}

// newFaultNet starts a proxy for each of targets, the servers' raft_bind
// addresses; proxies[i].ln.Addr() is what server i advertises.
func newFaultNet(t *testing.T, targets []string) *faultNet {
	t.Helper()
	n := &faultNet{t: t, cut: -1, pids: make([]int, len(targets)), conns: map[*proxyConn]struct{}{}}
	for i, target := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen for the raft proxy of s%d: %v", i+1, err)
		}
		p := &faultProxy{ln: ln, target: target, dst: i}
		n.proxies = append(n.proxies, p)
		go n.serve(p)
	}
	t.Cleanup(n.close)
	return n
}

// addr is the address server i advertises for raft.
func (n *faultNet) addr(i int) string { return n.proxies[i].ln.Addr().String() }

// setPID records server i's process, after each start.
func (n *faultNet) setPID(i, pid int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pids[i] = pid
}

// isolate cuts server i off from the others' raft traffic, closing the
// connections it has.
func (n *faultNet) isolate(i int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = i
	for c := range n.conns {
		if n.blocked(c.src, c.dst) {
			n.refused++
			c.close()
			delete(n.conns, c)
		}
	}
}

// heal ends the cut.
func (n *faultNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = -1
}

// blocked says whether a connection from src to dst crosses the cut. A
// connection whose dialer is not known is blocked while any server is cut
// off, which errs on the side of a deeper partition.
func (n *faultNet) blocked(src, dst int) bool {
	return n.cut >= 0 && (src == n.cut || dst == n.cut || src < 0)
}

func (n *faultNet) serve(p *faultProxy) {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		go n.forward(p, down)
	}
}

func (n *faultNet) forward(p *faultProxy, down net.Conn) {
	src := n.dialer(down.RemoteAddr().(*net.TCPAddr).Port, p.ln.Addr().(*net.TCPAddr).Port)
	n.mu.Lock()
	if src < 0 {
		n.strangers++
	}
	if n.blocked(src, p.dst) {
		n.refused++
		n.mu.Unlock()
		down.Close()
		return
	}
	n.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		// The server is down: so is its proxied connection.
		down.Close()
		return
	}
	c := &proxyConn{src: src, dst: p.dst, down: down, up: up}
	n.mu.Lock()
	if n.blocked(src, p.dst) {
		n.refused++
		n.mu.Unlock()
		c.close()
		return
	}
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, down); done <- struct{}{} }()
	go func() { io.Copy(down, up); done <- struct{}{} }()
	<-done
	c.close()
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// dialer returns the server whose process owns the loopback socket at
// port that is connected to proxyPort, or -1.
func (n *faultNet) dialer(port, proxyPort int) int {
	inode := socketInode(port, proxyPort)
	if inode == "" {
		return -1
	}
	n.mu.Lock()
	pids := append([]int(nil), n.pids...)
	n.mu.Unlock()
	want := "socket:[" + inode + "]"
	for i, pid := range pids {
		if pid == 0 {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name())); err == nil && l == want {
				return i
			}
		}
	}
	return -1
}

// socketInode finds, in /proc/net/tcp, the inode of the IPv4 socket whose
// local port is local and whose remote port is remote.
func socketInode(local, remote int) string {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || hexPort(fields[1]) != local || hexPort(fields[2]) != remote {
			continue
		}
		return fields[9]
	}
	return ""
}

func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	v, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return -1
	}
	return int(v)
}

func (n *faultNet) close() {
	for _, p := range n.proxies {
		p.ln.Close()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.conns {
		c.close()
	}
}

// refusals returns how many connections cuts refused or closed.
func (n *faultNet) refusals() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.refused
}

// unidentified returns how many connections came from no known server.
func (n *faultNet) unidentified() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.strangers
}

// The fault proxy forwards connections, tells who dialed them, and a cut
// closes and refuses the cut side's connections until it heals. The test
// process stands in for server 0, the dialer.
func TestFaultProxyCutsAndHeals(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	fn := newFaultNet(t, []string{"127.0.0.1:1", echo.Addr().String()})
	fn.setPID(0, os.Getpid())
	roundTrip := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		_, err := io.ReadFull(c, b)
		return err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", fn.addr(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	before := dial()
	if err := roundTrip(before); err != nil {
		t.Fatalf("a round trip through the proxy: %v", err)
	}
	fn.mu.Lock()
	var src []int
	for c := range fn.conns {
		src = append(src, c.src)
	}
	fn.mu.Unlock()
	if len(src) != 1 || src[0] != 0 {
		t.Fatalf("got dialers %v, want [0]: the test process is server 0", src)
	}

	fn.isolate(0)
	if err := roundTrip(before); err == nil {
		t.Error("a connection of the cut server still works after the cut")
	}
	if err := roundTrip(dial()); err == nil {
		t.Error("a new connection of the cut server works during the cut")
	}
	fn.heal()
	if err := roundTrip(dial()); err != nil {
		t.Errorf("a new connection after the heal: %v", err)
	}
	if got := fn.refusals(); got != 2 {
		t.Errorf("got %d refusals, want 2: one closed, one refused", got)
	}
}
