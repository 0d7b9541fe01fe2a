package e2e

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// BenchmarkTLS measures GET /v1/secrets through sdk/api against three
// agents of the same binary, on plain HTTP, TLS and mutual TLS, each with
// kept-alive and with new connections:
//
//	go test -run '^$' -bench BenchmarkTLS -benchtime 3s ./cli/e2e/
func BenchmarkTLS(b *testing.B) {
	p := makePKIB(b)
	server := []string{"-tls-cert-file", p.server + ".pem", "-tls-key-file", p.server + "-key.pem", "-tls-ca-file", p.ca + ".pem"}
	modes := []struct {
		name  string
		args  []string
		files api.TLSFiles
	}{
		{"plain", nil, api.TLSFiles{}},
		{"tls", server, api.TLSFiles{CACert: p.ca + ".pem"}},
		{"mtls", append(append([]string{}, server...), "-tls-verify-incoming"),
			api.TLSFiles{CACert: p.ca + ".pem", ClientCert: p.client + ".pem", ClientKey: p.client + "-key.pem"}},
	}
	for _, m := range modes {
		addr, token := benchAgent(b, m.args...)
		for _, keepAlive := range []bool{true, false} {
			name := m.name + "/keepalive"
			if !keepAlive {
				name = m.name + "/newconn"
			}
			b.Run(name, func(b *testing.B) {
				tlsCfg, err := m.files.ClientConfig()
				if err != nil {
					b.Fatal(err)
				}
				tr := &http.Transport{TLSClientConfig: tlsCfg, DisableKeepAlives: !keepAlive}
				defer tr.CloseIdleConnections()
				c, err := api.NewClient(&api.Config{Address: addr, Token: token, HTTPClient: &http.Client{Transport: tr}})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				for b.Loop() {
					if _, err := c.ListSecrets(ctx, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// makePKIB makes the certificates of makePKI for a benchmark.
func makePKIB(b *testing.B) *tlsPKI {
	b.Helper()
	dir := b.TempDir()
	p := &tlsPKI{dir: dir, ca: filepath.Join(dir, "ca"), server: filepath.Join(dir, "server"), client: filepath.Join(dir, "client")}
	for _, args := range [][]string{
		{"tls", "ca", "create", "-out", p.ca},
		{"tls", "cert", "create", "-server", "-ca", p.ca + ".pem", "-ca-key", p.ca + "-key.pem", "-out", p.server},
		{"tls", "cert", "create", "-client", "-ca", p.ca + ".pem", "-ca-key", p.ca + "-key.pem", "-out", p.client},
	} {
		if out, err := exec.Command(hushBin, args...).CombinedOutput(); err != nil {
			b.Fatalf("hush %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return p
}

// benchAgent starts a dev agent with args and returns its address and
// root token; it stops with the benchmark. A benchmark asks as fast as it
// can: the per-token rate limit is off.
func benchAgent(b *testing.B, args ...string) (string, string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := filepath.Join(b.TempDir(), "harness.hcl")
	if err := os.WriteFile(cfg, []byte("leave_runs_on_shutdown = false\nhttp {\n  rate_limit = 0\n}\n"+execRuntime()), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(hushBin, append([]string{"agent", "-dev", "-bind", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "-config", cfg}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var addr, token string
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() && (addr == "" || token == "") {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "export HUSH_ADDR="); ok {
			addr = v
		}
		if v, ok := strings.CutPrefix(line, "export HUSH_TOKEN="); ok {
			token = v
		}
	}
	if addr == "" || token == "" {
		b.Fatal("agent did not print its banner")
	}
	return addr, token
}
