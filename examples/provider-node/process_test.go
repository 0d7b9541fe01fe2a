package providernode_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
)

// pluginEnv is the environment a host gives the plugin, with the client
// certificate cert.
func pluginEnv(cert tls.Certificate) []string {
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	return []string{
		provider.Handshake.MagicCookieKey + "=" + provider.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
		"PLUGIN_CLIENT_CERT=" + string(certPEM),
	}
}

// readLine reads the first line of the plugin's stdout, failing the test
// if none comes within 30s.
func readLine(t *testing.T, sc *bufio.Scanner) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		sc.Scan()
		line <- sc.Text()
	}()
	select {
	case l := <-line:
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("stdout: got no line after 30s, want the handshake")
		return ""
	}
}

// TestHandshakeLine checks the handshake line field by field, and the
// certificate in it as go-plugin's client uses it: as the only root for
// the server name "localhost".
func TestHandshakeLine(t *testing.T) {
	client := selfSigned(t)
	cmd := exec.Command(node, mainJS)
	cmd.Env = pluginEnv(client)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line := readLine(t, bufio.NewScanner(out))
	fields := strings.Split(line, "|")
	if len(fields) != 6 {
		t.Fatalf("handshake %q: got %d fields, want 6", line, len(fields))
	}
	for i, want := range []string{"1", "1", "tcp", "", "grpc"} {
		if want != "" && fields[i] != want {
			t.Errorf("handshake field %d: got %q, want %q", i+1, fields[i], want)
		}
	}
	if !strings.HasPrefix(fields[3], "127.0.0.1:") {
		t.Errorf("handshake address: got %q, want one on 127.0.0.1", fields[3])
	}
	der, err := base64.RawStdEncoding.DecodeString(fields[5])
	if err != nil {
		t.Fatalf("handshake certificate: got %v, want unpadded base64", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("handshake certificate: got %v, want DER", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots}); err != nil {
		t.Errorf("handshake certificate: got %v, want it valid for localhost as its own root", err)
	}

	// The host's side of AutoMTLS: trust only that certificate, show ours.
	conn, err := tls.Dial("tcp", fields[3], &tls.Config{
		RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{client},
		NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatalf("dial plugin as its host: got %v, want a TLS connection", err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Errorf("ALPN: got %q, want %q (grpc-go requires it)", got, "h2")
	}
}

// TestExitsWithHost kills the plugin's parent with SIGKILL, which leaves
// it no chance to stop the plugin, and checks that the plugin notices and
// exits rather than hold secrets for no one.
func TestExitsWithHost(t *testing.T) {
	host := exec.Command("/bin/sh", "-c", `"$0" "$1" & echo $!; wait`, node, mainJS)
	host.Env = pluginEnv(selfSigned(t))
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatalf("start host: %v", err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	sc := bufio.NewScanner(out)
	pid, err := strconv.Atoi(readLine(t, sc))
	if err != nil {
		t.Fatalf("host: got no plugin pid (%v), want one", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	readLine(t, sc) // the handshake: the plugin is up

	if err := host.Process.Kill(); err != nil {
		t.Fatalf("kill host: %v", err)
	}
	_ = host.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d: still running 10s after its host was killed, want it gone", pid)
		}
	}
}

// alive reports whether pid runs. A zombie has exited: it only waits for
// a parent to reap it, which an orphan's new parent may never do.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}
