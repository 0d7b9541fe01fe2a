package e2e

import (
	"bytes"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fleet is several agents, each a cluster of one, and a CLI config file
// that names them all, as `hush cluster add` writes it.
type fleet struct {
	t      *testing.T
	home   string
	names  []string
	agents map[string]*agent
	tokens map[string]string // alice's token on each agent
	// outputs collects everything the CLI printed, to check that no value
	// ever shows.
	outputs []string
}

func startFleet(t *testing.T, names ...string) *fleet {
	t.Helper()
	return newFleet(t, func(n string) *agent { return startAgent(t, t.TempDir(), "-cluster", n) }, names...)
}

// newFleet starts an agent per name with start and adds each as a cluster.
func newFleet(t *testing.T, start func(name string) *agent, names ...string) *fleet {
	t.Helper()
	f := &fleet{t: t, home: t.TempDir(), names: names, agents: map[string]*agent{}, tokens: map[string]string{}}
	for _, n := range names {
		a := start(n)
		f.agents[n] = a
		f.tokens[n] = a.newUser("alice")
		tokenFile := writeFile(t, f.home, n+".token", f.tokens[n]+"\n")
		r := f.mustHush("", "cluster", "add", n, "--address", a.addr, "--token-file", tokenFile)
		if !strings.Contains(r.stdout, "Added cluster "+n) {
			t.Fatalf("cluster add %s: %s", n, r)
		}
	}
	return f
}

// hush runs the CLI with the fleet's config file.
func (f *fleet) hush(stdin string, args ...string) result {
	f.t.Helper()
	r := runHush(f.t, []string{"HOME=" + f.home, "HUSH_CONFIG=" + filepath.Join(f.home, "config.yaml")}, stdin, args...)
	f.outputs = append(f.outputs, r.stdout, r.stderr)
	return r
}

func (f *fleet) mustHush(stdin string, args ...string) result {
	f.t.Helper()
	r := f.hush(stdin, args...)
	if r.code != 0 {
		f.t.Fatalf("hush %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// ids lists alice's secrets on cluster n as name → id.
func (f *fleet) ids(n string) map[string]string {
	f.t.Helper()
	return f.agents[n].secretIDs(f.tokens[n])
}

// sameEverywhere fails unless every cluster holds secret name with one id,
// and returns it.
func (f *fleet) sameEverywhere(name string) string {
	f.t.Helper()
	want := f.ids(f.names[0])[name]
	if want == "" {
		f.t.Fatalf("cluster %s does not hold secret %s", f.names[0], name)
	}
	for _, n := range f.names[1:] {
		if got := f.ids(n)[name]; got != want {
			f.t.Fatalf("cluster %s holds secret %s as %q, want %s as on %s", n, name, got, want, f.names[0])
		}
	}
	return want
}

// goneEverywhere fails unless no cluster holds secret name.
func (f *fleet) goneEverywhere(name string) {
	f.t.Helper()
	for _, n := range f.names {
		if id, ok := f.ids(n)[name]; ok {
			f.t.Fatalf("cluster %s still holds secret %s (%s)", n, name, id)
		}
	}
}

// restart starts cluster n's agent again on the same address and data.
func (f *fleet) restart(n string) {
	f.t.Helper()
	old := f.agents[n]
	old.stop()
	a := startAgent(f.t, old.dataDir, "-cluster", n, "-bind", strings.TrimPrefix(old.addr, "http://"))
	if a.addr != old.addr {
		f.t.Fatalf("agent %s came back on %s, want %s", n, a.addr, old.addr)
	}
	f.agents[n] = a
}

// noValues fails if any value shows in anything the CLI printed or in an
// agent's data dir.
func (f *fleet) noValues(values ...string) {
	f.t.Helper()
	all := strings.Join(f.outputs, "\n")
	for _, v := range values {
		if strings.Contains(all, v) {
			f.t.Errorf("value %q shows in CLI output", v)
		}
		for _, n := range f.names {
			if hits := grepTree(f.t, f.agents[n].dataDir, []byte(v)); len(hits) > 0 {
				f.t.Errorf("value %q is in plaintext in cluster %s's data dir: %v", v, n, hits)
			}
			if strings.Contains(f.agents[n].stderr.String(), v) {
				f.t.Errorf("value %q shows in cluster %s's log", v, n)
			}
		}
	}
}

func TestClustersFanOutSyncAndTombstones(t *testing.T) {
	f := startFleet(t, "a", "b", "c")
	const v1, v2, v3 = "fanout-value-one-4f1d", "fanout-value-two-8c2e", "fanout-value-three-77aa"

	r := f.mustHush("", "get", "clusters")
	for _, want := range []string{"NAME", "LATENCY", "a (default)", "reachable"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get clusters: no %q in:\n%s", want, r)
		}
	}

	// Create reaches every cluster under one id.
	r = f.mustHush("", "create", "secret", "env", "API_KEY="+v1)
	if !strings.Contains(r.stdout, "Synced to all clusters") {
		t.Errorf("create: %s", r)
	}
	f.sameEverywhere("api-key")

	// With c down, a create is partial: reported per cluster, exit 1.
	f.agents["c"].stop()
	r = f.hush("", "create", "secret", "env", "DB_PASS="+v2)
	if r.code != 1 || !strings.Contains(r.stderr, "✗  cluster c:") ||
		!strings.Contains(r.stderr, "Synced to 2 of 3 clusters; run `hush sync secrets` to repair") {
		t.Errorf("partial create: want exit 1, a line for c and the summary; got %s", r)
	}
	if r = f.hush("", "create", "secret", "env", "DB_URL", "--from", "vault:secret/data/db#url", "--no-check"); r.code != 1 {
		t.Errorf("partial create of a reference: %s", r)
	}
	r = f.mustHush("", "get", "clusters")
	if !strings.Contains(r.stdout, "unreachable") {
		t.Errorf("get clusters with c down: %s", r)
	}

	// Back up, c is drift until sync repairs it; creating the secret again
	// would split it under two ids, so it is refused.
	f.restart("c")
	before := f.ids("a")["db-pass"]
	r = f.hush("", "create", "secret", "env", "DB_PASS="+v2)
	if r.code != 1 || !strings.Contains(r.stderr, "Secret db-pass already exists on a, b, so nothing was created") ||
		!strings.Contains(r.stderr, "hush sync secrets") {
		t.Errorf("create again after a partial create: %s", r)
	}
	if _, ok := f.ids("c")["db-pass"]; ok || f.ids("a")["db-pass"] != before {
		t.Fatal("a refused create changed a cluster")
	}
	r = f.mustHush("", "get", "secrets")
	if !strings.Contains(r.stdout, "CLUSTERS") || !strings.Contains(r.stdout, "2/3, missing: c") || !strings.Contains(r.stdout, "3/3") {
		t.Errorf("get secrets: want CLUSTERS with 3/3 and 2/3, missing: c; got %s", r)
	}
	r = f.mustHush("", "sync", "secrets", "--dry-run")
	if !strings.Contains(r.stdout, "cluster c:") || !strings.Contains(r.stdout, "+ db-pass") {
		t.Errorf("sync --dry-run: %s", r)
	}
	if _, ok := f.ids("c")["db-pass"]; ok {
		t.Fatal("sync --dry-run copied the secret")
	}
	f.mustHush("", "sync", "secrets")
	f.sameEverywhere("db-pass")
	f.sameEverywhere("db-url")
	// A reference is copied as a reference.
	if code, body := f.agents["c"].request("GET", "/v1/secrets/db-url", f.tokens["c"], ""); code != 200 ||
		!strings.Contains(body, `"source":"vault:secret/data/db#url"`) {
		t.Errorf("db-url on c after sync: %d %s", code, body)
	}
	if r = f.mustHush("", "sync", "secrets"); !strings.Contains(r.stdout, "All 3 clusters are in sync") {
		t.Errorf("second sync: %s", r)
	}

	// A delete while b is down is applied by sync, never undone by b's copy.
	f.agents["b"].stop()
	r = f.hush("", "delete", "secret", "api-key", "-y")
	if r.code != 1 || !strings.Contains(r.stderr, "✗  cluster b:") {
		t.Errorf("partial delete: %s", r)
	}
	f.restart("b")
	if _, ok := f.ids("b")["api-key"]; !ok {
		t.Fatal("b lost api-key while it was down")
	}
	r = f.mustHush("", "sync", "secrets")
	if !strings.Contains(r.stdout, "- api-key") || !strings.Contains(r.stdout, "deleted on a, c") {
		t.Errorf("sync after delete: want b's copy deleted; got %s", r)
	}
	f.goneEverywhere("api-key")
	f.mustHush("", "sync", "secrets")
	f.goneEverywhere("api-key")

	// The same name under different ids is a conflict: reported, not settled.
	f.agents["a"].mustHush(f.tokens["a"], "", "create", "secret", "env", "SHARED="+v3)
	f.agents["b"].mustHush(f.tokens["b"], "", "create", "secret", "env", "SHARED="+v3)
	idA, idB := f.ids("a")["shared"], f.ids("b")["shared"]
	r = f.hush("", "sync", "secrets")
	if r.code != 1 || !strings.Contains(r.stderr, "secret shared is held with different ids") || !strings.Contains(r.stderr, "--prefer") {
		t.Errorf("conflict: want it reported with exit 1; got %s", r)
	}
	if f.ids("a")["shared"] != idA || f.ids("b")["shared"] != idB {
		t.Fatal("sync overwrote a conflicting secret without --prefer")
	}
	if _, ok := f.ids("c")["shared"]; ok {
		t.Fatal("sync copied a conflicting secret without --prefer")
	}
	r = f.mustHush("", "sync", "secrets", "--prefer", "b")
	if got := f.sameEverywhere("shared"); got != idB {
		t.Errorf("--prefer b kept %s, want b's %s", got, idB)
	}
	f.noValues(v1, v2, v3)
}

func TestUnreachableClusterBoundedByTimeout(t *testing.T) {
	f := startFleet(t, "a", "b")
	// A cluster that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	cfg := filepath.Join(f.home, "config.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append([]byte("timeout: 3s\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}

	tokenFile := writeFile(t, f.home, "hung.token", "hush_x\n")
	if r := f.hush("", "cluster", "add", "hung", "--address", "http://"+ln.Addr().String(), "--token-file", tokenFile); r.code != 0 ||
		!strings.Contains(r.stderr, "does not answer") {
		t.Fatalf("adding a hung cluster: want a warning and exit 0; got %s", r)
	} else if !strings.HasPrefix(r.stdout, "✔  Added cluster hung\n") {
		t.Errorf("adding a hung cluster: got %q, want only its name", r.stdout)
	}
	start := time.Now()
	r := f.hush("", "create", "secret", "env", "SLOW=slow-value-91ac")
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "✗  cluster hung: ") || !strings.Contains(r.stderr, "(no answer within 3s; the timeout is set in") {
		t.Errorf("create with a hung cluster: %s", r)
	}
	// The hung cluster costs one timeout, not one per request the command
	// makes (two), nor the client's default 30s; the rest is slack for a
	// loaded machine.
	t.Logf("create with a hung cluster took %s", took)
	if took >= 6*time.Second {
		t.Errorf("create took %s with a 3s timeout: it waited for the hung cluster more than once", took)
	}
	f.names = []string{"a", "b"}
	f.sameEverywhere("slow")

	// So does every other command that talks to all clusters.
	// A listing shows what the others hold, and which did not answer.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"get", "secrets"}, 0},
		{[]string{"sync", "secrets"}, 1},
		{[]string{"delete", "secret", "slow", "-y"}, 1},
	} {
		args := tc.args
		start := time.Now()
		r := f.hush("", args...)
		took := time.Since(start)
		if r.code != tc.code || !strings.Contains(r.stderr, "cluster hung: ") {
			t.Errorf("hush %s with a hung cluster: want exit %d naming it; got %s", strings.Join(args, " "), tc.code, r)
		}
		if took >= 6*time.Second {
			t.Errorf("hush %s took %s with a 3s timeout: it waited for the hung cluster more than once", strings.Join(args, " "), took)
		}
	}
	f.goneEverywhere("slow")
}

func TestClusterConfig(t *testing.T) {
	f := startFleet(t, "a", "b")
	cfg := filepath.Join(f.home, "config.yaml")
	fi, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(cfg)
	for _, tok := range f.tokens {
		if strings.Contains(string(b), tok) {
			t.Error("config holds a token given as --token-file")
		}
	}

	// Runs need a cluster chosen once there are several and no default.
	f.mustHush("", "cluster", "remove", "a")
	if r := f.mustHush("", "get", "clusters", "-o", "name"); r.stdout != "b\n" {
		t.Errorf("after removing a: got clusters %q, want b", r.stdout)
	}
	f.mustHush("", "cluster", "add", "a", "--address", f.agents["a"].addr, "--token", f.tokens["a"])
	b, _ = os.ReadFile(cfg)
	if !strings.Contains(string(b), "default: b") {
		t.Fatalf("config after remove and add: want b as the default, got:\n%s", b)
	}
	if err := os.WriteFile(cfg, bytes.ReplaceAll(b, []byte("default: b\n"), nil), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := writeFile(t, f.home, "run.yaml", "name: hi\nimage: busybox\ncommand: echo hi\n")
	r := f.hush("", "run", "-f", spec, "--no-follow")
	if r.code != 1 || !strings.Contains(r.stderr, "you have 2 clusters and chose none: b, a") {
		t.Errorf("run with no cluster chosen: %s", r)
	}
	r = f.hush("", "run", "-f", spec, "--no-follow", "--cluster", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "no cluster named nope") {
		t.Errorf("run on an unknown cluster: %s", r)
	}

	// HUSH_ADDR and HUSH_TOKEN address one agent and win over the file.
	r = runHush(t, []string{"HUSH_CONFIG=" + cfg, "HUSH_ADDR=" + f.agents["b"].addr, "HUSH_TOKEN=" + f.tokens["b"]}, "", "get", "secrets")
	if r.code != 0 || strings.Contains(r.stdout, "CLUSTERS") {
		t.Errorf("get secrets with HUSH_ADDR: want one agent, no CLUSTERS column; got %s", r)
	}

	for _, args := range [][]string{
		{"sync", "secrets", "--prefer", "nope"},
		{"apply"},
		{"cluster", "add", "x"},
		{"cluster", "add", "Bad_Name", "--address", "http://127.0.0.1:1", "--token", "t"},
	} {
		if r := f.hush("", args...); r.code != 2 {
			t.Errorf("hush %s: want exit 2 for bad usage; got %s", strings.Join(args, " "), r)
		}
	}
	if r := f.hush("", "cluster", "remove", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no cluster named nope") {
		t.Errorf("remove an unknown cluster: %s", r)
	}

	// A rejected token is not saved; a broken entry fails only its cluster.
	wrong := writeFile(t, f.home, "wrong.token", "hush_wrong")
	if r := f.hush("", "cluster", "add", "c", "--address", f.agents["a"].addr, "--token-file", wrong); r.code != 1 ||
		!strings.Contains(r.stderr, "cluster c rejected the token") {
		t.Errorf("add with a wrong token: %s", r)
	}
	tokenFile := writeFile(t, f.home, "c.token", f.tokens["a"])
	f.mustHush("", "cluster", "add", "c", "--address", f.agents["a"].addr, "--token-file", tokenFile)
	if err := os.WriteFile(tokenFile, []byte("hush_revoked"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := f.mustHush("", "get", "clusters"); !regexp.MustCompile(`c +http://\S+ +token rejected`).MatchString(r.stdout) {
		t.Errorf("get clusters with a rejected token: %s", r)
	}
	f.mustHush("", "cluster", "remove", "c")
	if r := f.mustHush("", "get", "clusters", "-o", "name"); r.stdout != "b\na\n" {
		t.Errorf("clusters after a refused add: got %q, want b and a", r.stdout)
	}
	b, _ = os.ReadFile(cfg)
	broken := string(b) + "  - name: gone\n    address: http://127.0.0.1:1\n    token_file: " + filepath.Join(f.home, "missing.token") + "\n"
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	f.agents["b"].mustHush(f.tokens["b"], "", "create", "secret", "env", "ONLY_B=only-b-value-1c3e")
	r = f.mustHush("", "get", "secrets")
	if !strings.Contains(r.stdout, "only-b") || !strings.Contains(r.stderr, "cluster gone: read token_file") {
		t.Errorf("get secrets with a broken entry: want b's secret and gone's error; got %s", r)
	}
	r = f.mustHush("", "get", "clusters")
	if !regexp.MustCompile(`gone +http://127.0.0.1:1 +misconfigured`).MatchString(r.stdout) {
		t.Errorf("get clusters with a broken entry: %s", r)
	}
	for _, n := range f.names {
		f.agents[n].stop()
	}
	if r := f.hush("", "get", "secrets"); r.code != 1 || !strings.Contains(r.stderr, "No cluster answered") {
		t.Errorf("get secrets with every cluster down: %s", r)
	}

	bad := map[string]struct{ config, want string }{
		"unknown field": {"clusters:\n  - name: a\n    adress: http://x\n", "line 3: field adress not found"},
		"bad name":      {"clusters:\n  - name: A_1\n    address: http://127.0.0.1:1\n    token: t\n", `cluster name "A_1" is not valid`},
		"bad default":   {"default: z\nclusters:\n  - name: a\n    address: http://127.0.0.1:1\n    token: t\n", "default cluster z is not in clusters"},
		"bad timeout":   {"timeout: soon\nclusters: []\n", `timeout "soon" is not a positive duration`},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "config.yaml", tc.config)
			r := runHush(t, []string{"HUSH_CONFIG=" + p}, "", "get", "secrets")
			if r.code != 1 || !strings.Contains(r.stderr, p) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("got %s\nwant exit 1 naming %s and %q", r, p, tc.want)
			}
		})
	}
}

func TestRunsAcrossClusters(t *testing.T) {
	f := newFleet(t, func(string) *agent { return startRunAgent(t, "exec") }, "a", "b")
	f.mustHush("", "create", "secret", "env", "GREETING=fleet-greeting-6d2a")

	// The spec's cluster, then the default (a, the first added).
	onB := writeSpec(t, "on-b", "busybox", `test -n "$GREETING" && echo ran-on-b`, "compute:\n  cluster: b")
	if r := f.mustHush("", "run", "-f", onB); !strings.Contains(r.stdout, "ran-on-b") {
		t.Errorf("run on b: %s", r)
	}
	onDefault := writeSpec(t, "on-default", "busybox", "echo ran-on-default")
	f.mustHush("", "run", "-f", onDefault)
	for cluster, run := range map[string]string{"b": "on-b", "a": "on-default"} {
		if code, body := f.agents[cluster].request("GET", "/v1/runs/"+run, f.tokens[cluster], ""); code != 200 {
			t.Errorf("run %s is not on cluster %s: %d %s", run, cluster, code, body)
		}
	}

	r := f.mustHush("", "get", "runs")
	if !strings.Contains(r.stdout, "CLUSTER") || !regexp.MustCompile(`on-b .* b\n`).MatchString(r.stdout) ||
		!regexp.MustCompile(`on-default .* a\n`).MatchString(r.stdout) {
		t.Errorf("get runs: want each run with its cluster; got %s", r)
	}
	if r = f.mustHush("", "logs", "on-b"); !strings.Contains(r.stdout, "ran-on-b") {
		t.Errorf("logs of a run on b: %s", r)
	}
	if r = f.mustHush("", "describe", "run", "on-default", "-o", "name"); r.stdout != "on-default\n" {
		t.Errorf("describe a run on a: %s", r)
	}
	// A name on two clusters is refused until one is chosen.
	twice := writeSpec(t, "twice", "busybox", "true")
	f.mustHush("", "run", "-f", twice, "--cluster", "a")
	f.mustHush("", "run", "-f", twice, "--cluster", "b")
	if r = f.hush("", "delete", "run", "twice", "-y"); r.code != 1 || !strings.Contains(r.stderr, "more than one run is named twice (on a, b)") {
		t.Errorf("delete a run named on two clusters: %s", r)
	}
	f.mustHush("", "delete", "run", "twice", "--cluster", "b", "-y")
	if code, _ := f.agents["a"].request("GET", "/v1/runs/twice", f.tokens["a"], ""); code != 200 {
		t.Error("deleting b's run deleted a's")
	}
	f.mustHush("", "delete", "runs", "--all", "-y")
	if r = f.mustHush("", "get", "runs", "-o", "name"); r.stdout != "" {
		t.Errorf("runs left after delete --all: %q", r.stdout)
	}
	f.noValues("fleet-greeting-6d2a")
}

// TestClusterCACert reaches an agent behind a TLS-terminating proxy whose
// certificate only the cluster's ca_cert vouches for.
func TestClusterCACert(t *testing.T) {
	f := startFleet(t, "a")
	target, err := url.Parse(f.agents["a"].addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	proxy.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	ca := writeFile(t, f.home, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw})))
	tokenFile := writeFile(t, f.home, "tls.token", f.tokens["a"])

	r := f.hush("", "cluster", "add", "untrusted", "--address", proxy.URL, "--token-file", tokenFile)
	if r.code != 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("add without the CA: want a warning about the certificate; got %s", r)
	}
	r = f.mustHush("", "cluster", "add", "tls", "--address", proxy.URL, "--token-file", tokenFile, "--ca-cert", ca)
	if !strings.Contains(r.stdout, "Added cluster tls (agent") {
		t.Errorf("add with the CA: %s", r)
	}
	// Only the way through the proxy is left.
	f.mustHush("", "cluster", "remove", "untrusted")
	f.mustHush("", "cluster", "remove", "a")
	r = f.mustHush("", "create", "secret", "env", "OVER_TLS=tls-value-2b81")
	if !strings.Contains(r.stdout, "Synced to all clusters") {
		t.Errorf("create through the TLS proxy: %s", r)
	}
	r = f.mustHush("", "get", "clusters", "-o", "json")
	if !strings.Contains(r.stdout, `"reachable": true`) || !strings.Contains(r.stdout, `"secrets": 1`) {
		t.Errorf("get clusters: want tls reachable with the secret; got %s", r)
	}
	if _, ok := f.ids("a")["over-tls"]; !ok {
		t.Error("the secret created through the proxy is not on the agent")
	}
	bad := writeFile(t, f.home, "bad.pem", "not a certificate")
	if r = f.hush("", "cluster", "add", "bad", "--address", proxy.URL, "--token-file", tokenFile, "--ca-cert", bad); r.code != 1 ||
		!strings.Contains(r.stderr, "holds no PEM certificate") {
		t.Errorf("add with a bad CA file: %s", r)
	}
	f.noValues("tls-value-2b81")
}
