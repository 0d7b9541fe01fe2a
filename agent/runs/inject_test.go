package runs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// In an isolated run, a git-ssh key's known_hosts is mounted beside the
// key, wherever the key goes, and GIT_SSH_COMMAND names both; without
// known_hosts, ssh trusts a host's key on first use.
func TestMaterializeGitSSHKnownHosts(t *testing.T) {
	key := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n")
	knownHosts := []byte("github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	tests := map[string]struct {
		mountPath  string
		knownHosts bool
		refreshing bool
		wantEnv    string
		wantMounts []string // targets
		wantErr    string
	}{
		"known_hosts at the default path": {
			knownHosts: true,
			wantEnv:    "GIT_SSH_COMMAND=ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/secrets/git/known_hosts -i /secrets/git/key",
			wantMounts: []string{"/secrets/git/key", "/secrets/git/known_hosts"},
		},
		"known_hosts beside a mount path": {
			mountPath: "/root/.ssh/id_ed25519", knownHosts: true,
			wantEnv:    "GIT_SSH_COMMAND=ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/.ssh/known_hosts -i /root/.ssh/id_ed25519",
			wantMounts: []string{"/root/.ssh/id_ed25519", "/root/.ssh/known_hosts"},
		},
		"known_hosts in the dir a refresh binds": {
			knownHosts: true, refreshing: true,
			wantEnv:    "GIT_SSH_COMMAND=ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/secrets/git/known_hosts -i /secrets/git/key",
			wantMounts: []string{"/secrets/git"},
		},
		"no known_hosts": {
			wantEnv:    "GIT_SSH_COMMAND=ssh -o StrictHostKeyChecking=accept-new -i /secrets/git/key",
			wantMounts: []string{"/secrets/git/key"},
		},
		"key mounted where known_hosts goes": {
			mountPath: "/ssh/known_hosts", knownHosts: true,
			wantErr: "secret git mounts at /ssh/known_hosts, where its known_hosts goes",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sec := &store.Secret{Name: "git", Type: api.TypeGitSSH, Fields: map[string]string{}, Data: map[string][]byte{"value": key}}
			if tc.mountPath != "" {
				sec.Fields[api.FieldMountPath] = tc.mountPath
			}
			if tc.knownHosts {
				sec.Data[api.FieldKnownHosts] = knownHosts
			}
			runDir := t.TempDir()
			inj, err := materialize(runDir, true, []*store.Secret{sec}, nil, map[string]bool{"git": tc.refreshing})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error holding %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var git []string
			for _, e := range inj.env {
				if strings.HasPrefix(e, "GIT_SSH_COMMAND=") {
					git = append(git, e)
				}
			}
			if len(git) != 1 || git[0] != tc.wantEnv {
				t.Errorf("got %q, want [%q]", git, tc.wantEnv)
			}
			targets := make([]string, len(inj.mounts))
			for i, m := range inj.mounts {
				targets[i] = m.Target
			}
			if !slices.Equal(targets, tc.wantMounts) {
				t.Errorf("got mounts at %q, want %q", targets, tc.wantMounts)
			}
			kh := filepath.Join(runDir, filesDir, "git", api.FieldKnownHosts)
			b, err := os.ReadFile(kh)
			switch {
			case tc.knownHosts && string(b) != string(knownHosts):
				t.Errorf("known_hosts on the tmpfs: got %q (%v), want the secret's", b, err)
			case !tc.knownHosts && !os.IsNotExist(err):
				t.Errorf("known_hosts on the tmpfs of a secret without one: got %v, want none", err)
			}
			if tc.knownHosts && !tc.refreshing {
				want := runtime.Mount{Source: kh, Target: tc.wantMounts[1]}
				if !slices.Contains(inj.mounts, want) {
					t.Errorf("got mounts %v, want %v among them", inj.mounts, want)
				}
			}
		})
	}
}
