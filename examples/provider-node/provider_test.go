// Package providernode_test runs the Node.js example provider as the hush
// agent runs plugins: a real node process, launched through go-plugin with
// AutoMTLS, checked by the SDK's conformance suite.
package providernode_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hush-sh/hush/sdk/provider"
	"github.com/hush-sh/hush/sdk/providertest"
)

// node and mainJS are the interpreter and the plugin's entry point, found
// by TestMain.
var node, mainJS string

// TestMain installs the plugin's npm packages if a clean clone lacks them
// (.ci does it too), so that `go test ./...` works on its own. The tests
// need node: without it they fail rather than skip.
func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "provider-node: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	var err error
	if node, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("find node: %w: install Node.js 20 or newer", err)
	}
	if mainJS, err = filepath.Abs("main.js"); err != nil {
		return fmt.Errorf("find main.js: %w", err)
	}
	if _, err := os.Stat("node_modules"); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci: %w\n%s", err, out)
	}
	return nil
}

// plugin is the command that runs the plugin, as an agent's plugin block
// would: path = node, args = [main.js].
func plugin() *exec.Cmd { return exec.Command(node, mainJS) }

var suite = providertest.Suite{
	Config:    map[string]any{"vars": map[string]string{"DB_PASSWORD": "hunter2", "API_TOKEN": "t0k\nen"}},
	BadConfig: map[string]any{"vars": map[string]string{"1BAD": "x"}},
	Existing:  map[string][]byte{"DB_PASSWORD": []byte("hunter2"), "API_TOKEN": []byte("t0k\nen")},
	Missing:   []string{"NOPE", "db_password"},
}

func TestConformance(t *testing.T) {
	providertest.RunProcessConformance(t, plugin, suite)
}

func TestConfigureDiagnostics(t *testing.T) {
	p := providertest.LaunchProcess(t, plugin())
	tests := map[string]struct {
		version int
		config  string
		want    []string // "severity attribute: summary" of each diagnostic
	}{
		"good":          {1, `{"vars": {"A": "1"}}`, nil},
		"no config":     {1, ``, []string{"warning vars: vars is empty: every reference will be not found"}},
		"unknown key":   {1, `{"vars": {"A": "1"}, "varz": {}}`, []string{`error varz: unknown setting "varz"`}},
		"vars a list":   {1, `{"vars": ["A"]}`, []string{"error vars: vars must be an object, not a list"}},
		"not an object": {1, `"vars"`, []string{"error : the config must be an object, not a string"}},
		"every problem": {1, `{"vars": {"1A": "x", "B": 2}}`, []string{
			`error vars: "1A" is not a variable name`, "error vars: vars.B must be a string, not a number"}},
		"newer api": {2, `{"vars": {"A": "1"}}`, []string{"error : provider API version 2 is not one this plugin speaks"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			resp, err := p.Configure(ctx, &provider.ConfigureRequest{APIVersion: tc.version, Config: []byte(tc.config)})
			if err != nil {
				t.Fatalf("Configure: got error %v, want none", err)
			}
			var got []string
			for _, d := range resp.Diagnostics {
				sev := "error"
				if d.Severity == provider.SeverityWarning {
					sev = "warning"
				}
				got = append(got, fmt.Sprintf("%s %s: %s", sev, d.Attribute, d.Summary))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Configure(%s): got diagnostics %q, want %q", tc.config, got, tc.want)
			}
		})
	}
}

func TestCallsOutOfTurn(t *testing.T) {
	p := providertest.LaunchProcess(t, plugin())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := p.Resolve(ctx, &provider.ResolveRequest{References: []string{"A"}})
	if err == nil || !strings.Contains(err.Error(), "must call Configure first") {
		t.Errorf("Resolve before Configure: got error %v, want one saying to call Configure first", err)
	}
	_, err = p.(provider.Storer).Put(ctx, &provider.PutRequest{Reference: "A", Value: []byte("v")})
	if !errors.Is(err, provider.ErrUnimplemented) {
		t.Errorf("Put on a provider without the store capability: got error %v, want one matching ErrUnimplemented", err)
	}
}

// TestLifecycle checks what go-plugin needs of the process besides the
// provider service: health checks, log lines it can re-emit, and a clean
// exit when the host is done.
func TestLifecycle(t *testing.T) {
	client, logs := providertest.LaunchClient(t, plugin())
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: got error %v, want none", err)
	}
	if err := rpc.Ping(); err != nil {
		t.Errorf("Ping (the health service): got error %v, want none", err)
	}
	pid := client.ReattachConfig().Pid
	client.Kill()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("after Kill: signalling pid %d: got %v, want %v", pid, err, syscall.ESRCH)
	}

	// The host re-emits a JSON line at its own level; a line it cannot
	// parse (such as a timestamp in the wrong format) comes out at debug.
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry struct {
			Level   string `json:"@level"`
			Message string `json:"@message"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("host log: got line %q, want JSON", line)
		}
		levels[entry.Message] = entry.Level
	}
	for msg, want := range map[string]string{"serving": "info", "shutdown requested by the host": "debug"} {
		if got := levels[msg]; got != want {
			t.Errorf("host log: got %q at level %q, want level %q (log: %s)", msg, got, want, logs)
		}
	}
}

// TestRefusesOtherClients dials the plugin as another local process would,
// and checks that only the host, with the certificate it handed the
// plugin, gets an answer.
func TestRefusesOtherClients(t *testing.T) {
	client, _ := providertest.LaunchClient(t, plugin())
	if _, err := client.Client(); err != nil {
		t.Fatalf("start plugin: got error %v, want none", err)
	}
	addr := client.ReattachConfig().Addr.String()
	tests := map[string][]tls.Certificate{
		"no certificate":   nil,
		"a foreign one":    {selfSigned(t)},
		"two foreign ones": {selfSigned(t), selfSigned(t)},
	}
	for name, certs := range tests {
		t.Run(name, func(t *testing.T) {
			// The probe skips verifying the plugin: what is under test is
			// whether the plugin verifies the probe.
			creds := credentials.NewTLS(&tls.Config{Certificates: certs, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
			if err == nil {
				t.Errorf("health check with %s: got %v, want the plugin to refuse the connection", name, resp)
			}
		})
	}
}

// selfSigned makes a client certificate the plugin has never seen.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRunDirectly checks that the plugin, run by a person rather than a
// host, says what it is and exits, without printing a handshake.
func TestRunDirectly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, mainJS)
	cmd.Env = []string{}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("run without the magic cookie: got %v, want exit status 1", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: got %q, want nothing", stdout.String())
	}
	if !strings.Contains(stderr.String(), "not meant to be run directly") {
		t.Errorf("stderr: got %q, want it to say the plugin is not meant to be run directly", stderr.String())
	}
}
