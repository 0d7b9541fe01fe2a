package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// sealEnv is the variable that carries the servers' shared seal key.
const sealEnv = "HUSH_BENCH_SEAL"

// serversMain measures, in one run, secret creates per second on a
// one-node agent and on a cluster of three servers (through the leader and
// through a follower, which forwards), all over mutual TLS on loopback;
// then the cluster's leader failover time: how long after the leader's
// SIGKILL a write succeeds again, over several kills.
func serversMain(args []string) error {
	fs := flag.NewFlagSet("servers", flag.ContinueOnError)
	n := fs.Int("n", 2000, "creates per setup and number of clients")
	clients := fs.String("clients", "1,32", "the numbers of concurrent clients to measure")
	kills := fs.Int("kills", 10, "how many times to kill the leader")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	counts, err := counts("clients", *clients)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 || *kills < 1 {
		return fmt.Errorf("%w: bench servers [-n 2000] [-clients 1,32] [-kills 10] HUSH", errUsage)
	}
	work, err := os.MkdirTemp("", "hush-bench-servers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &serversBench{hush: fs.Arg(0), work: work}
	defer b.stopAll()
	if err := b.start(); err != nil {
		return err
	}
	if err := b.creates(*n, counts); err != nil {
		return err
	}
	return b.failover(*kills)
}

// serversBench is a one-node agent and a cluster of three servers.
type serversBench struct {
	hush, work string
	seal       string
	single     *agent
	servers    []*agent
	args       [][]string // each server's command line, to restart it
	token      string
	agentsSeq  int
}

// start makes the PKI and starts the one-node agent and the servers.
func (b *serversBench) start() error {
	for _, args := range [][]string{
		{"tls", "ca", "create", "-out", b.path("ca")},
		{"tls", "cert", "create", "-server", "-ca", b.path("ca.pem"), "-ca-key", b.path("ca-key.pem"), "-out", b.path("server")},
		{"tls", "cert", "create", "-client", "-ca", b.path("ca.pem"), "-ca-key", b.path("ca-key.pem"), "-out", b.path("client")},
	} {
		if out, err := exec.Command(b.hush, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("hush %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	b.seal = base64.StdEncoding.EncodeToString(key)

	single, err := b.config("single", "")
	if err != nil {
		return err
	}
	if b.single, err = launch(b.hush, []string{"agent", "-config", single, "-data-dir", b.path("single-data"), "-bind", "127.0.0.1:0", "-log-json"}); err != nil {
		return err
	}
	if err := b.single.wait(2 * time.Minute); err != nil {
		return fmt.Errorf("start the one-node agent: %w", err)
	}
	tok, err := os.ReadFile(b.path("single-data", "root.token"))
	if err != nil {
		return err
	}
	b.single.root = strings.TrimSpace(string(tok))

	apis, rafts := make([]string, 3), make([]string, 3)
	for i := range 3 {
		if apis[i], err = freePort(); err != nil {
			return err
		}
		if rafts[i], err = freePort(); err != nil {
			return err
		}
	}
	for i := range 3 {
		var join []string
		for j := range 3 {
			if j != i {
				join = append(join, fmt.Sprintf("%q", apis[j]))
			}
		}
		cfg, err := b.config(fmt.Sprintf("s%d", i+1), fmt.Sprintf(`node_name = "s%d"
server {
  enabled = true
  bootstrap_expect = 3
  retry_join = [%s]
  raft_bind = %q
}
seal "env" {
  var = %q
}
`, i+1, strings.Join(join, ", "), rafts[i], sealEnv))
		if err != nil {
			return err
		}
		b.args = append(b.args, []string{"agent", "-config", cfg, "-data-dir", b.path(fmt.Sprintf("s%d-data", i+1)), "-bind", apis[i], "-log-json"})
		a, err := launch(b.hush, b.args[i], sealEnv+"="+b.seal)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, a)
	}
	for i, a := range b.servers {
		if err := a.wait(2 * time.Minute); err != nil {
			return fmt.Errorf("start server s%d: %w", i+1, err)
		}
	}
	// One server made the cluster's root token, in its own data dir.
	for i := range 3 {
		if tok, err := os.ReadFile(b.path(fmt.Sprintf("s%d-data", i+1), "root.token")); err == nil {
			b.token = strings.TrimSpace(string(tok))
		}
	}
	if b.token == "" {
		return errors.New("no server made a root token")
	}
	return nil
}

// config writes the config of agent name: TLS with client certificates,
// no rate limit, a state dir and, as root, uids of its own for exec runs
// (though no run starts), then extra.
func (b *serversBench) config(name, extra string) (string, error) {
	runtime := ""
	if os.Geteuid() == 0 {
		first := 700600000 + b.agentsSeq*100
		runtime = fmt.Sprintf("runtime \"exec\" {\n  uid_range = \"%d-%d\"\n}\n", first, first+99)
	}
	b.agentsSeq++
	cfg := fmt.Sprintf(`state_dir = %q
tls {
  cert_file = %q
  key_file = %q
  ca_file = %q
  verify_incoming = true
}
http {
  rate_limit = 0
}
%s%s`, b.path(name+"-state"), b.path("server.pem"), b.path("server-key.pem"), b.path("ca.pem"), runtime, extra)
	path := b.path(name + ".hcl")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

func (b *serversBench) path(elem ...string) string {
	return filepath.Join(append([]string{b.work}, elem...)...)
}

// client returns a client of the agents at addrs, in that order, over
// mutual TLS.
func (b *serversBench) client(token string, timeout time.Duration, addrs ...string) (*api.Client, error) {
	files := api.TLSFiles{CACert: b.path("ca.pem"), ClientCert: b.path("client.pem"), ClientKey: b.path("client-key.pem")}
	tlsCfg, err := files.ClientConfig()
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, a := range addrs {
		urls = append(urls, "https://"+strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://"))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256, TLSClientConfig: tlsCfg}
	return api.NewClient(&api.Config{Address: strings.Join(urls, ","), Token: token, HTTPClient: &http.Client{Transport: tr, Timeout: timeout}})
}

// serverAddrs returns the servers' addresses, server first.
func (b *serversBench) serverAddrs(first int) []string {
	var out []string
	for k := range 3 {
		out = append(out, b.servers[(first+k)%3].addr)
	}
	return out
}

// leader returns the index of the servers' leader as server i sees it
// once every server answers, waiting up to within.
func (b *serversBench) leader(i int, within time.Duration) (int, error) {
	c, err := b.client(b.token, 5*time.Second, b.servers[i].addr)
	if err != nil {
		return -1, err
	}
	deadline := time.Now().Add(within)
	for {
		peers, err := c.RaftPeers(context.Background())
		lead, healthy := -1, 0
		for _, p := range peers {
			if p.Healthy {
				healthy++
			}
			if p.Leader {
				fmt.Sscanf(p.ID, "s%d", &lead)
				lead--
			}
		}
		if err == nil && healthy == 3 && lead >= 0 {
			return lead, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no leader with all three servers healthy, as s%d sees it, within %s (last error: %v)", i+1, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// creates measures creates per second on the one-node agent and on the
// cluster, through its leader and through a follower, with each number
// of concurrent clients.
func (b *serversBench) creates(n int, counts []int) error {
	lead, err := b.leader(0, time.Minute)
	if err != nil {
		return err
	}
	setups := []struct {
		label string
		token string
		addrs []string
	}{
		{"1-node", b.single.root, []string{b.single.addr}},
		{"3-server via leader", b.token, b.serverAddrs(lead)},
		{"3-server via follower", b.token, b.serverAddrs(lead + 1)},
	}
	fmt.Printf("%-24s %8s %12s %9s %9s %8s\n", "setup", "clients", "creates/s", "p50 ms", "p99 ms", "ratio")
	for _, clients := range counts {
		var base float64
		for k, s := range setups {
			c, err := b.client(s.token, 5*time.Minute, s.addrs...)
			if err != nil {
				return err
			}
			start := time.Now()
			lat, err := createMany(c, n, clients, func(i int) *api.CreateSecretRequest {
				return &api.CreateSecretRequest{
					Name: fmt.Sprintf("s%d-c%d-%d", k, clients, i), Type: api.TypeEnv,
					Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("bench-value")},
				}
			})
			if err != nil {
				return fmt.Errorf("%s: %w", s.label, err)
			}
			rate := float64(n) / time.Since(start).Seconds()
			if k == 0 {
				base = rate
			}
			slices.Sort(lat)
			fmt.Printf("%-24s %8d %12.0f %9.2f %9.2f %8.2f\n", s.label, clients, rate, ms(lat[n/2]), ms(lat[n*99/100]), rate/base)
		}
	}
	return nil
}

// failover kills the leader kills times, measures how long after each
// SIGKILL a write through a client of all three servers succeeds again,
// and restarts the killed server, waiting for it to be back in the
// cluster, before the next.
func (b *serversBench) failover(kills int) error {
	var times []time.Duration
	for k := range kills {
		lead, err := b.leader((k+1)%3, time.Minute)
		if err != nil {
			return err
		}
		// Each attempt gets a short deadline, as a client that retries
		// would: a write that waits for a leader is not the measure.
		c, err := b.client(b.token, 2*time.Second, b.serverAddrs(lead)...)
		if err != nil {
			return err
		}
		killed := time.Now()
		b.servers[lead].cmd.Process.Signal(syscall.SIGKILL)
		<-b.servers[lead].done
		var took time.Duration
		for i := 0; ; i++ {
			_, err := c.CreateSecret(context.Background(), &api.CreateSecretRequest{
				Name: fmt.Sprintf("failover-%d-%d", k, i), Type: api.TypeEnv,
				Fields: map[string]string{api.FieldKey: "K"}, Data: map[string][]byte{api.FieldValue: []byte("bench-value")},
			})
			if err == nil {
				took = time.Since(killed)
				break
			}
			if time.Since(killed) > time.Minute {
				return fmt.Errorf("no write succeeded within a minute of killing leader s%d: %w", lead+1, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		times = append(times, took)
		fmt.Printf("kill %2d: leader s%d, a write succeeded again after %6.0f ms\n", k+1, lead+1, ms(took))
		a, err := launch(b.hush, b.args[lead], sealEnv+"="+b.seal)
		if err != nil {
			return err
		}
		b.servers[lead] = a
		if err := a.wait(2 * time.Minute); err != nil {
			return fmt.Errorf("restart s%d: %w", lead+1, err)
		}
		if _, err := b.leader(lead, time.Minute); err != nil {
			return err
		}
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	fmt.Printf("leader failover (SIGKILL until a write succeeds), %d kills: median %.0f ms, max %.0f ms\n", kills, ms(median), ms(sorted[len(sorted)-1]))
	return nil
}

func (b *serversBench) stopAll() {
	for _, a := range append([]*agent{b.single}, b.servers...) {
		if a != nil {
			a.stop()
		}
	}
}

// freePort returns a loopback address no one listens on.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
