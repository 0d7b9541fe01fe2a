package cli

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `hush create secret git-ssh KEY_FILE --known-hosts FILE` checks the file
// and stores it with the key; without it, the CLI says that hosts' keys are
// accepted on first use, and how to pin them.
func TestCreateGitSSHKnownHosts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const knownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	key := write("id_git", "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n")
	good := write("known_hosts", knownHosts)
	bad := write("bad_hosts", "# pinned\ngithub.com\n")
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStderr []string // each in stderr; none: stderr empty
	}{
		"known_hosts after the file":  {args: []string{key, "--known-hosts", good}},
		"known_hosts before the file": {args: []string{"--known-hosts", good, key}},
		"bad known_hosts": {args: []string{key, "--known-hosts", bad}, wantCode: 2,
			wantStderr: []string{"known_hosts: not a known_hosts file: line 2 (no host key on it)", "ssh-keyscan"}},
		"missing known_hosts file": {args: []string{key, "--known-hosts", filepath.Join(dir, "nope")}, wantCode: 1,
			wantStderr: []string{"does not exist"}},
		"no known_hosts": {args: []string{key},
			wantStderr: []string{"!  Secret id-git has no known_hosts: each run accepts an SSH host's key the first time", "StrictHostKeyChecking=accept-new",
				"create it again with --known-hosts FILE"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			addr, token := testAgent(t, "c")
			env := map[string]string{"HUSH_ADDR": addr, "HUSH_TOKEN": token}
			code, out, errw := hush(t, env, append([]string{"create", "secret", "git-ssh"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("got exit %d (stdout %q, stderr %q), want %d", code, out, errw, tc.wantCode)
			}
			if len(tc.wantStderr) == 0 && errw != "" {
				t.Errorf("got stderr %q, want none", errw)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(errw, w) {
					t.Errorf("got stderr %q, want it to hold %q", errw, w)
				}
			}
			wantOut := "✔  Created git-ssh secret: id-git\n"
			if code != 0 {
				wantOut = ""
			}
			if !strings.HasPrefix(out, wantOut) {
				t.Errorf("got stdout %q, want it to start %q", out, wantOut)
			}
		})
	}

	// What the agent receives: the file's bytes, as known_hosts.
	fake := &fakeAgent{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	if code, out, errw := hush(t, map[string]string{"HUSH_ADDR": srv.URL, "HUSH_TOKEN": "t"}, "create", "secret", "git-ssh", key, "--known-hosts", good); code != 0 {
		t.Fatalf("got exit %d (stdout %q, stderr %q), want 0", code, out, errw)
	}
	if len(fake.requests) != 1 || string(fake.requests[0].Data["known_hosts"]) != knownHosts {
		t.Errorf("got requests %+v, want one holding the known_hosts file", fake.requests)
	}
}
