package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// servers is a cluster of server agents on loopback, with mutual TLS.
type servers struct {
	t      *testing.T
	pki    *tlsPKI
	dirs   []string
	args   [][]string
	agents []*agent
}

// handedOut holds the addresses freePort returned: the kernel may give a
// port it just freed to the next listener, so one process could hand the
// same port to two agents.
var handedOut sync.Map

// freePort returns a loopback address no one listens on, and that it has
// not returned before.
func freePort(t *testing.T) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
}

// startServers starts n server agents that form one cluster. They share
// their seal, as a cluster's servers must: its key is in the environment.
func startServers(t *testing.T, n int) *servers {
	t.Helper()
	return startServersWith(t, n, serverHooks{})
}

// serverHooks change how startServersWith starts servers.
type serverHooks struct {
	// raftAdvertise, when set, is given the addresses the servers bind
	// for Raft and returns, for each server, the address it advertises.
	raftAdvertise func(raft []string) func(i int) string
	// launched, when set, learns of each server's process as it starts.
	launched func(i int, a *agent)
	// config, when set, is more HCL for every server, read after its own.
	config string
}

func startServersWith(t *testing.T, n int, hooks serverHooks) *servers {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	t.Setenv("E2E_CLUSTER_SEAL", base64.StdEncoding.EncodeToString(key))
	c := &servers{t: t, pki: makePKI(t)}
	api, raft := make([]string, n), make([]string, n)
	for i := range n {
		api[i], raft[i] = freePort(t), freePort(t)
	}
	advertise := func(int) string { return "" }
	if hooks.raftAdvertise != nil {
		advertise = hooks.raftAdvertise(raft)
	}
	for i := range n {
		dir := t.TempDir()
		var join []string
		for j := range n {
			if j != i {
				join = append(join, fmt.Sprintf("%q", api[j]))
			}
		}
		adv := ""
		if a := advertise(i); a != "" {
			adv = fmt.Sprintf("\n  raft_advertise = %q", a)
		}
		cfg := writeFile(t, dir, "server.hcl", fmt.Sprintf(`state_dir = %q
node_name = "s%d"
tls {
  cert_file = %q
  key_file = %q
  ca_file = %q
  verify_incoming = true
}
server {
  enabled = true
  bootstrap_expect = %d
  retry_join = [%s]
  raft_bind = %q%s
}
http {
  rate_limit = 0
}
seal "env" {
  var = "E2E_CLUSTER_SEAL"
}
`, filepath.Join(dir, "state"), i+1, c.pki.server+".pem", c.pki.server+"-key.pem", c.pki.ca+".pem", n, strings.Join(join, ", "), raft[i], adv))
		c.dirs = append(c.dirs, filepath.Join(dir, "data"))
		args := []string{"-config", cfg, "-bind", api[i]}
		if hooks.config != "" {
			args = append(args, "-config", writeFile(t, dir, "more.hcl", hooks.config))
		}
		c.args = append(c.args, args)
	}
	for i := range n {
		a := launchAgent(t, c.dirs[i], c.args[i]...)
		a.shared = true
		c.agents = append(c.agents, a)
		if hooks.launched != nil {
			hooks.launched(i, a)
		}
	}
	for _, a := range c.agents {
		a.waitStarted(60 * time.Second)
		a.addr = strings.Replace(a.addr, "http://", "https://", 1)
	}
	c.shareToken()
	return c
}

// shareToken gives every server the root token that one of them made.
func (c *servers) shareToken() {
	token := ""
	for _, a := range c.agents {
		if a.token != "" {
			token = a.token
		}
	}
	if token == "" {
		c.t.Fatal("no server made a root token")
	}
	for _, a := range c.agents {
		a.token = token
	}
}

// hush runs the CLI against server i, over mutual TLS.
func (c *servers) hush(i int, args ...string) result {
	c.t.Helper()
	a := c.agents[i]
	return runHush(c.t, c.pki.env(a.addr, a.token, c.pki.client), "", args...)
}

// restart starts server i again, on its data dir and addresses.
func (c *servers) restart(i int) {
	c.t.Helper()
	token := c.agents[i].token
	c.agents[i] = launchAgent(c.t, c.dirs[i], c.args[i]...)
	c.agents[i].shared = true
	c.agents[i].waitStarted(60 * time.Second)
	c.agents[i].addr = strings.Replace(c.agents[i].addr, "http://", "https://", 1)
	c.agents[i].token = token
}

// leader returns the index of the server that server i takes for the
// leader, or -1.
func (c *servers) leader(i int) int {
	c.t.Helper()
	r := c.hush(i, "server", "members", "-o", "json")
	if r.code != 0 {
		return -1
	}
	var peers []struct {
		ID     string `json:"id"`
		Leader bool   `json:"leader"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &peers); err != nil {
		c.t.Fatalf("parse server members %q: %v", r.stdout, err)
	}
	for _, p := range peers {
		if p.Leader {
			var n int
			fmt.Sscanf(p.ID, "s%d", &n)
			return n - 1
		}
	}
	return -1
}

// names lists the secrets server i's root user sees.
func (c *servers) names(i int) string {
	c.t.Helper()
	r := c.hush(i, "get", "secrets", "-o", "name")
	if r.code != 0 {
		c.t.Fatalf("list secrets on s%d: %s", i+1, r)
	}
	return r.stdout
}

// Three servers replicate: writes on any one are read on every one, a
// run on a follower gets its secret, the leader's death elects another
// and writes go on, a restarted server catches up, and without a quorum
// writes fail with a clear error and lose nothing acknowledged.
func TestServersReplicate(t *testing.T) {
	c := startServers(t, 3)
	for i := range 3 {
		if r := c.hush(i, "create", "secret", "env", fmt.Sprintf("S%d=server-canary-%d", i, i)); r.code != 0 {
			t.Fatalf("create on s%d: %s", i+1, r)
		}
	}
	for i := range 3 {
		if got := c.names(i); got != "s0\ns1\ns2\n" {
			t.Errorf("s%d lists %q, want the secrets created on each server", i+1, got)
		}
	}
	lead := c.leader(0)
	if lead < 0 {
		t.Fatal("no leader")
	}
	follower := (lead + 1) % 3
	spec := writeSpec(t, "on-follower", "x", `echo "[$S2]"`, "secrets: [s2]")
	if r := c.hush(follower, "run", "-f", spec); r.code != 0 || !strings.Contains(r.stdout, "[server-canary-2]") {
		t.Fatalf("a run on follower s%d: %s", follower+1, r)
	}

	// The leader dies: another is elected, and writes go on.
	killed := time.Now()
	c.agents[lead].cmd.Process.Signal(syscall.SIGKILL)
	<-c.agents[lead].exited
	newLead := -1
	for newLead < 0 || newLead == lead {
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("no new leader within 15s of killing s%d", lead+1)
		}
		time.Sleep(100 * time.Millisecond)
		newLead = c.leader(follower)
	}
	t.Logf("s%d took over from s%d %s after the kill", newLead+1, lead+1, time.Since(killed).Round(time.Millisecond))
	if r := c.hush(follower, "create", "secret", "env", "AFTER=after-failover"); r.code != 0 {
		t.Fatalf("a write after the failover: %s", r)
	}
	c.restart(lead)
	if got := c.names(lead); !strings.Contains(got, "after\n") {
		t.Errorf("the restarted s%d lists %q, want the write made while it was down", lead+1, got)
	}

	// Two of three die: no quorum, and writes say so.
	others := []int{(lead + 1) % 3, (lead + 2) % 3}
	for _, i := range others {
		c.agents[i].cmd.Process.Signal(syscall.SIGKILL)
		<-c.agents[i].exited
	}
	r := c.hush(lead, "create", "secret", "env", "LOST=never-acknowledged")
	if r.code == 0 || !strings.Contains(r.stderr, "no quorum") {
		t.Errorf("a write without a quorum: got %s, want a failure saying no quorum", r)
	}
	for _, i := range others {
		c.restart(i)
	}
	for i := range 3 {
		got := c.names(i)
		for _, want := range []string{"s0\n", "s1\n", "s2\n", "after\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("s%d lists %q after the quorum came back, missing %q", i+1, got, want)
			}
		}
	}
	for i := range 3 {
		c.agents[i].stop()
		for _, canary := range []string{"server-canary-0", "server-canary-2", "after-failover"} {
			if hits := grepTree(t, filepath.Dir(c.dirs[i]), []byte(canary)); len(hits) > 0 {
				t.Errorf("canary %q in clear in %v", canary, hits)
			}
		}
	}
}

// A rotation on one server rotates the keyring of the cluster: every
// server seals with the new key and reads what the old one sealed, and
// the old key, once retired, is pruned everywhere.
func TestServersRotateKeyring(t *testing.T) {
	c := startServers(t, 3)
	if r := c.hush(0, "create", "secret", "env", "BEFORE=rotated-canary-71"); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	if r := c.hush(1, "operator", "keyring", "rotate"); r.code != 0 {
		t.Fatalf("rotate on s2: %s", r)
	}
	keys := func(i int) map[string]string {
		r := c.hush(i, "operator", "keyring", "list", "-o", "json")
		if r.code != 0 {
			t.Fatalf("keyring list on s%d: %s", i+1, r)
		}
		var list []struct {
			ID    uint32 `json:"id"`
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, k := range list {
			out[fmt.Sprint(k.ID)] = k.State
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for keys(2)["1"] != "retired" {
		if time.Now().After(deadline) {
			t.Fatalf("key 1 did not retire within 30s: %v", keys(2))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := c.hush(2, "operator", "keyring", "prune"); r.code != 0 {
		t.Fatalf("prune on s3: %s", r)
	}
	for i := range 3 {
		if got := keys(i); len(got) != 1 || got["2"] != "active" {
			t.Errorf("s%d's keyring after prune: %v, want key 2 alone", i+1, got)
		}
		if r := c.hush(i, "create", "secret", "env", fmt.Sprintf("AFTER%d=after-rotation-%d", i, i)); r.code != 0 {
			t.Fatalf("create on s%d after the rotation: %s", i+1, r)
		}
		spec := writeSpec(t, fmt.Sprintf("rotated-%d", i), "x", `echo "[$BEFORE]"`, "secrets: [before]")
		if r := c.hush(i, "run", "-f", spec); r.code != 0 || !strings.Contains(r.stdout, "[rotated-canary-71]") {
			t.Errorf("a run on s%d reads the secret sealed before the rotation: %s", i+1, r)
		}
	}
}
