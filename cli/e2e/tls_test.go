package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tlsPKI is a CA, an agent's certificate and a client's, made with `hush
// tls`, plus a client certificate of another CA.
type tlsPKI struct {
	dir                               string
	ca, server, node, client, strange string // file prefixes: NAME.pem, NAME-key.pem
}

func makePKI(t *testing.T) *tlsPKI {
	t.Helper()
	dir := t.TempDir()
	p := &tlsPKI{dir: dir, ca: filepath.Join(dir, "ca"), server: filepath.Join(dir, "server"), node: filepath.Join(dir, "node"),
		client: filepath.Join(dir, "client"), strange: filepath.Join(dir, "stranger")}
	other := filepath.Join(dir, "other-ca")
	for _, args := range [][]string{
		{"tls", "ca", "create", "-out", p.ca},
		{"tls", "cert", "create", "-server", "-ca", p.ca + ".pem", "-ca-key", p.ca + "-key.pem", "-out", p.server},
		{"tls", "cert", "create", "-node", "-ca", p.ca + ".pem", "-ca-key", p.ca + "-key.pem", "-out", p.node},
		{"tls", "cert", "create", "-client", "-ca", p.ca + ".pem", "-ca-key", p.ca + "-key.pem", "-out", p.client},
		{"tls", "ca", "create", "-out", other},
		{"tls", "cert", "create", "-client", "-ca", other + ".pem", "-ca-key", other + "-key.pem", "-out", p.strange},
	} {
		if r := runHush(t, nil, "", args...); r.code != 0 {
			t.Fatalf("hush %s: %s", strings.Join(args, " "), r)
		}
	}
	st, err := os.Stat(p.server + "-key.pem")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("server key: got %v (%v), want mode 0600", st, err)
	}
	return p
}

// env is the environment of a CLI that talks to addr with token, trusting
// the CA and presenting the client certificate named by prefix ("" for
// none).
func (p *tlsPKI) env(addr, token, client string) []string {
	env := []string{"HUSH_ADDR=" + addr, "HUSH_TOKEN=" + token, "HUSH_CACERT=" + p.ca + ".pem"}
	if client != "" {
		env = append(env, "HUSH_CLIENT_CERT="+client+".pem", "HUSH_CLIENT_KEY="+client+"-key.pem")
	}
	return env
}

// dial makes a TLS connection to addr with the client certificate of
// prefix client ("" for none), sends an HTTP request over it, and returns
// the server certificate's serial and the first bytes of the answer.
func (p *tlsPKI) dial(t *testing.T, addr, client string) (*big.Int, string, error) {
	t.Helper()
	pemCA, err := os.ReadFile(p.ca + ".pem")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCA)
	cfg := &tls.Config{RootCAs: roots}
	if client != "" {
		pair, err := tls.LoadX509KeyPair(client+".pem", client+"-key.pem")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	u, _ := url.Parse(addr)
	c, err := tls.Dial("tcp", u.Host, cfg)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, string(b), err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, string(b), nil
}

// TestTLS runs the seed flow over mutual TLS with certificates from `hush
// tls`, shows what is refused and how, and swaps the agent's certificate
// with SIGHUP while a run is active.
func TestTLS(t *testing.T) {
	p := makePKI(t)
	a := startAgent(t, "", "-tls-cert-file", p.server+".pem", "-tls-key-file", p.server+"-key.pem",
		"-tls-ca-file", p.ca+".pem", "-tls-verify-incoming")
	if !strings.HasPrefix(a.addr, "https://127.0.0.1:") {
		t.Fatalf("got agent address %s, want https", a.addr)
	}
	user := a.newUserTLS(p)
	hush := func(client string, args ...string) result {
		t.Helper()
		return runHush(t, p.env(a.addr, user, client), "", args...)
	}
	mustHush := func(args ...string) result {
		t.Helper()
		r := hush(p.client, args...)
		if r.code != 0 {
			t.Fatalf("hush %s: %s", strings.Join(args, " "), r)
		}
		return r
	}

	// The seed flow.
	mustHush("create", "secret", "env", "SECRET_STUFF=tls-canary-5e1f")
	if r := mustHush("get", "secrets"); !strings.Contains(r.stdout, "secret-stuff") {
		t.Errorf("get secrets: %s", r)
	}
	if r := mustHush("run", "-f", "../../examples/hello-secret-user.yaml"); !strings.Contains(r.stdout, "Hello tls-canary-5e1f!") {
		t.Errorf("hello run: %s", r)
	}

	// Refused at the handshake: no client certificate, or one of
	// another CA. The raw connection never gets an HTTP answer.
	for name, tc := range map[string]struct{ client, cli, raw string }{
		"no client certificate": {"", "requires a client certificate", "certificate required"},
		"another CA's client":   {p.strange, "refused this client's certificate", "unknown certificate authority"},
	} {
		t.Run(name, func(t *testing.T) {
			r := hush(tc.client, "get", "secrets")
			if r.code != 1 || !strings.Contains(r.stderr, tc.cli) {
				t.Errorf("got %s, want exit 1 and %q", r, tc.cli)
			}
			_, answer, err := p.dial(t, a.addr, tc.client)
			if err == nil || !strings.Contains(err.Error(), tc.raw) || answer != "" {
				t.Errorf("raw connection: got error %v and answer %q, want %q and no answer", err, answer, tc.raw)
			}
		})
	}

	// Plain HTTP to the TLS port fails cleanly, with a hint.
	plain := strings.Replace(a.addr, "https://", "http://", 1)
	resp, err := http.Get(plain + "/v1/health")
	if err != nil {
		t.Fatalf("plain request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		t.Errorf("plain request: got %d %q, want 400 saying HTTPS", resp.StatusCode, body)
	}
	if r := runHush(t, p.env(plain, user, p.client), "", "get", "secrets"); r.code != 1 || !strings.Contains(r.stderr, "use an https:// address") {
		t.Errorf("plain CLI: got %s, want a hint to use https", r)
	}

	// SIGHUP swaps the certificate; an active run goes on.
	mustHush("run", "--no-follow", "-f", writeSpec(t, "sleeper", "x", "echo up; sleep 1000"))
	waitRunStatus(t, func() string { return tlsRunStatus(t, p, a.addr, user, "sleeper") }, "RUNNING")
	before, _, err := p.dial(t, a.addr, p.client)
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(p.dir, "server2")
	if r := runHush(t, nil, "", "tls", "cert", "create", "-server", "-ca", p.ca+".pem", "-ca-key", p.ca+"-key.pem", "-out", next); r.code != 0 {
		t.Fatal(r)
	}
	for _, suffix := range []string{".pem", "-key.pem"} {
		if err := os.Rename(next+suffix, p.server+suffix); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after *big.Int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if after, _, err = p.dial(t, a.addr, p.client); err == nil && after.Cmp(before) != 0 {
			break
		}
	}
	if after == nil || after.Cmp(before) == 0 {
		t.Fatalf("served serial %v after SIGHUP, want a new one than %v:\n%s", after, before, a.stderr)
	}
	if !strings.Contains(a.stderr.String(), "TLS files reloaded") {
		t.Errorf("agent log does not say it reloaded:\n%s", a.stderr)
	}
	if got := tlsRunStatus(t, p, a.addr, user, "sleeper"); got != "RUNNING" {
		t.Errorf("run after SIGHUP: got %s, want RUNNING", got)
	}
	mustHush("stop", "run", "sleeper")
	if r := hush(p.client, "logs", "sleeper"); !strings.Contains(r.stdout, "up") {
		t.Errorf("logs of the run across the reload: %s", r)
	}
}

// TestTLSRunReachesAgent shows a run on a TLS agent (without mutual TLS)
// gets an https HUSH_ADDR and the CA, and uses hush against its agent.
func TestTLSRunReachesAgent(t *testing.T) {
	p := makePKI(t)
	a := startAgent(t, "", "-tls-cert-file", p.server+".pem", "-tls-key-file", p.server+"-key.pem", "-tls-ca-file", p.ca+".pem")
	env := p.env(a.addr, a.token, "")
	if r := runHush(t, env, "", "create", "secret", "env", "NESTED=tls-nested-77c0"); r.code != 0 {
		t.Fatal(r)
	}
	r := runHush(t, env, "", "run", "-f", writeSpec(t, "nested", "x", `echo "addr=$HUSH_ADDR"; hush get secrets -o name`))
	if r.code != 0 || !strings.Contains(r.stdout, "addr=https://127.0.0.1:") || !strings.Contains(r.stdout, "nested") {
		t.Errorf("run using hush over TLS: %s", r)
	}
}

// newUserTLS creates a token for alice over mutual TLS.
func (a *agent) newUserTLS(p *tlsPKI) string {
	a.t.Helper()
	r := runHush(a.t, p.env(a.addr, a.token, p.client), "", "acl", "token", "create", "--user", "alice", "-q")
	if r.code != 0 {
		a.t.Fatalf("create token: %s", r)
	}
	return strings.TrimSpace(r.stdout)
}

func tlsRunStatus(t *testing.T, p *tlsPKI, addr, token, name string) string {
	t.Helper()
	r := runHush(t, p.env(addr, token, p.client), "", "get", "runs", "-o", "json")
	// A run's status follows its name in the JSON list.
	i := strings.Index(r.stdout, `"name": "`+name+`"`)
	if i < 0 {
		return ""
	}
	rest := r.stdout[i:]
	j := strings.Index(rest, `"status": "`)
	if j < 0 {
		return ""
	}
	rest = rest[j+len(`"status": "`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func waitRunStatus(t *testing.T, status func() string, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = status(); got == want {
			return
		}
	}
	t.Fatalf("run status: got %q, want %q", got, want)
}

// TestPlainHTTPOnNetworkRefused: an agent without TLS does not start on an
// address other hosts reach, and says how to fix it. Validation fails
// before it binds.
func TestPlainHTTPOnNetworkRefused(t *testing.T) {
	r := runHush(t, nil, "", "agent", "-dev", "-bind", "0.0.0.0:0")
	if r.code != 1 || !strings.Contains(r.stderr, "Plain HTTP on a network address") || !strings.Contains(r.stderr, "-insecure-http") {
		t.Errorf("got %s, want a refusal that names -insecure-http", r)
	}
}

// startMTLSAgent starts an agent on dataDir ("" for a dev agent) that
// requires client certificates of
// p's CA (verify_incoming).
func startMTLSAgent(t *testing.T, p *tlsPKI, dataDir string, args ...string) *agent {
	t.Helper()
	return startAgent(t, dataDir, append([]string{"-tls-cert-file", p.server + ".pem", "-tls-key-file", p.server + "-key.pem",
		"-tls-ca-file", p.ca + ".pem", "-tls-verify-incoming"}, args...)...)
}

// pemBlocks matches the PEM blocks a run printed.
var pemBlocks = regexp.MustCompile(`(?s)-----BEGIN ([A-Z ]+)-----\n.*?\n-----END ([A-Z ]+)-----\n`)

// TestMutualTLSNestedRun: on an agent with verify_incoming, a run gets a
// client certificate of its own (its key 0400 on its tmpfs) and uses it
// to call its agent with hush and to launch a nested run, which gets its
// own; once the run has ended, its certificate is refused at the
// handshake.
func TestMutualTLSNestedRun(t *testing.T) {
	p := makePKI(t)
	a := startMTLSAgent(t, p, "")
	user := a.newUserTLS(p)
	env := p.env(a.addr, user, p.client)
	if r := runHush(t, env, "", "create", "secret", "env", "SECRET_STUFF=mtls-nested-5a2c"); r.code != 0 {
		t.Fatal(r)
	}
	parent := `printf 'name: child\nimage: x\ncommand: echo child sees $SECRET_STUFF; hush get secrets -o name\n' > /tmp/child.yaml
# The run trusts ca_file's CA alone for its agent, never the run CA.
echo "key mode $(stat -c %a "$HUSH_CLIENT_KEY"), CA certificates $(grep -c BEGIN "$HUSH_CACERT")"
hush get secrets -o name
hush run -f /tmp/child.yaml
cat "$HUSH_CLIENT_CERT" "$HUSH_CLIENT_KEY"`
	r := runHush(t, env, "", "run", "-f", writeSpec(t, "parent", "x", parent))
	if r.code != 0 {
		t.Fatalf("parent run: %s", r)
	}
	for _, want := range []string{"key mode 400, CA certificates 1", "secret-stuff", "child sees mtls-nested-5a2c", "✔  Run child completed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("parent run: no %q in:\n%s", want, r)
		}
	}
	if strings.Count(r.stdout, "secret-stuff") < 2 {
		t.Errorf("the child's hush get secrets: want secret-stuff listed by parent and child; got %s", r.stdout)
	}

	// The parent has ended: its certificate, valid by its dates and
	// signed by a CA the agent trusts for clients, is refused.
	blocks := pemBlocks.FindAllString(r.stdout, -1)
	if len(blocks) != 2 {
		t.Fatalf("got %d PEM blocks in the run's output, want its certificate and key:\n%s", len(blocks), r.stdout)
	}
	runCert := filepath.Join(t.TempDir(), "run")
	if err := os.WriteFile(runCert+".pem", []byte(blocks[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runCert+"-key.pem", []byte(blocks[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, answer, err := p.dial(t, a.addr, runCert); err == nil || !strings.Contains(err.Error(), "bad certificate") || answer != "" {
		t.Errorf("ended run's certificate: got error %v and answer %q, want bad certificate and no answer", err, answer)
	}
	if r := runHush(t, p.env(a.addr, user, runCert), "", "get", "secrets"); r.code != 1 {
		t.Errorf("CLI with the ended run's certificate: got %s, want exit 1", r)
	}
}

// TestMutualTLSSync: two clusters, each requiring client certificates,
// added with --ca-cert, --client-cert and --client-key; a create fans out
// to both and sync repairs one that missed a secret.
func TestMutualTLSSync(t *testing.T) {
	p := makePKI(t)
	f := &fleet{t: t, home: t.TempDir(), names: []string{"a", "b"}, agents: map[string]*agent{}, tokens: map[string]string{}}
	for _, n := range f.names {
		a := startMTLSAgent(t, p, t.TempDir(), "-cluster", n)
		f.agents[n] = a
		f.tokens[n] = a.newUserTLS(p)
		tokenFile := writeFile(t, f.home, n+".token", f.tokens[n]+"\n")
		f.mustHush("", "cluster", "add", n, "--address", a.addr, "--token-file", tokenFile,
			"--ca-cert", p.ca+".pem", "--client-cert", p.client+".pem", "--client-key", p.client+"-key.pem")
	}
	on := func(n string, args ...string) result {
		t.Helper()
		r := runHush(t, p.env(f.agents[n].addr, f.tokens[n], p.client), "", args...)
		if r.code != 0 {
			t.Fatalf("hush %s on %s: %s", strings.Join(args, " "), n, r)
		}
		return r
	}
	if r := f.mustHush("", "create", "secret", "env", "FANOUT=mtls-fanout-91d3"); !strings.Contains(r.stdout, "Synced to all clusters") {
		t.Errorf("create over mutual TLS: %s", r)
	}
	// Only on a, as a write that b missed.
	on("a", "create", "secret", "env", "MISSED=mtls-missed-40be")
	if r := on("b", "get", "secrets", "-o", "name"); strings.Contains(r.stdout, "missed") || !strings.Contains(r.stdout, "fanout") {
		t.Fatalf("b before sync: got %q, want fanout and not missed", r.stdout)
	}
	if r := f.mustHush("", "sync", "secrets"); !strings.Contains(r.stdout, "+ missed") {
		t.Errorf("sync: want missed copied to b; got %s", r)
	}
	if r := on("b", "get", "secrets", "-o", "name"); !strings.Contains(r.stdout, "missed") {
		t.Errorf("b after sync: got %q, want missed", r.stdout)
	}
	if r := f.mustHush("", "sync", "secrets"); !strings.Contains(r.stdout, "All 2 clusters are in sync") {
		t.Errorf("second sync: %s", r)
	}
	f.noValues("mtls-fanout-91d3", "mtls-missed-40be")
}

// TestMutualTLSRunAdopted: the run CA lives in the store, so a run that
// outlives its agent (SIGKILL) keeps a certificate that the next agent on
// the data dir accepts.
func TestMutualTLSRunAdopted(t *testing.T) {
	p := makePKI(t)
	dir := t.TempDir()
	// A fixed port: the run's HUSH_ADDR must reach the restarted agent.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := writeFile(t, dir, "agent.hcl", fmt.Sprintf("state_dir = %q\nleave_runs_on_shutdown = true\n%s\n",
		filepath.Join(dir, "state"), execRuntime(`stop_grace = "2s"`)))
	r := &restartable{t: t, dataDir: filepath.Join(dir, "data"), args: []string{"-config", cfg, "-bind", addr,
		"-tls-cert-file", p.server + ".pem", "-tls-key-file", p.server + "-key.pem", "-tls-ca-file", p.ca + ".pem", "-tls-verify-incoming"}}
	r.agent = startAgent(t, r.dataDir, r.args...)
	t.Cleanup(func() {
		r.restartWith(syscall.SIGTERM, 0, "leave_runs_on_shutdown = false\n")
		r.stop()
	})
	user := r.newUserTLS(p)
	hush := func(args ...string) result {
		t.Helper()
		return runHush(t, p.env(r.addr, user, p.client), "", args...)
	}
	// The second call retries until the agent is back; it ends only if
	// the new agent takes the run's certificate.
	script := `hush get runs -o name >/dev/null && echo before-ok
sleep 3
until hush get runs -o name >/dev/null 2>&1; do sleep 0.2; done
echo after-ok`
	if res := hush("run", "--no-follow", "-f", writeSpec(t, "adopted", "x", script)); res.code != 0 {
		t.Fatal(res)
	}
	waitLog := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out := hush("logs", "adopted").stdout
			if strings.Contains(out, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run never printed %q; its log:\n%s", want, out)
			}
		}
	}
	waitLog("before-ok")
	r.restart(syscall.SIGKILL, 0)
	waitLog("after-ok")
	waitRunStatus(t, func() string { return tlsRunStatus(t, p, r.addr, user, "adopted") }, "COMPLETED")
}
