package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envOf is an Env over a map, as a test or another program gives it.
func envOf(vars map[string]string) Env {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestLoadReadsOnlyItsEnv checks that Load finds the agent, the config
// file, the token files and the home dir through the Env it is given, and
// never through the process's environment.
func TestLoadReadsOnlyItsEnv(t *testing.T) {
	// What the process's environment says must not matter.
	t.Setenv("HUSH_ADDR", "http://process.invalid:1")
	t.Setenv("HUSH_CONFIG", filepath.Join(t.TempDir(), "process.yaml"))
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "tok"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(home, ".hush", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte("clusters:\n  - name: a\n    address: http://127.0.0.1:1\n    token_file: ~/tok\n  - name: b\n    address: http://127.0.0.1:2\n    token_file: ~/missing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env map[string]string
		// want is the clusters as "NAME ADDRESS", with "!" for a broken one.
		want   []string
		direct bool
		err    string
	}{
		"HUSH_ADDR and HUSH_TOKEN": {
			env:    map[string]string{"HUSH_ADDR": "http://127.0.0.1:7", "HUSH_TOKEN": "t"},
			want:   []string{"127.0.0.1:7 http://127.0.0.1:7"},
			direct: true,
		},
		"HUSH_TOKEN_FILE": {
			env:    map[string]string{"HUSH_ADDR": "http://127.0.0.1:7", "HUSH_TOKEN_FILE": filepath.Join(home, "tok")},
			want:   []string{"127.0.0.1:7 http://127.0.0.1:7"},
			direct: true,
		},
		"HUSH_CACERT that is missing": {
			env: map[string]string{"HUSH_ADDR": "https://127.0.0.1:7", "HUSH_TOKEN": "t", "HUSH_CACERT": filepath.Join(home, "missing.pem")},
			err: "read CA certificate",
		},
		"HUSH_CLIENT_CERT without HUSH_CLIENT_KEY": {
			env: map[string]string{"HUSH_ADDR": "https://127.0.0.1:7", "HUSH_TOKEN": "t", "HUSH_CLIENT_CERT": filepath.Join(home, "tok")},
			err: "a client certificate needs its key",
		},
		"client_cert without client_key": {
			env: map[string]string{"HUSH_CONFIG": writeConfig(t, "clusters:\n  - name: a\n    address: https://127.0.0.1:1\n    token: t\n    client_cert: /c.pem\n")},
			err: "cluster a has only one of client_cert and client_key: give both",
		},
		"HUSH_ADDR without a token": {
			env: map[string]string{"HUSH_ADDR": "http://127.0.0.1:7"},
			err: "no token: set HUSH_TOKEN",
		},
		"config under HOME, ~ expanded from it": {
			env:  map[string]string{"HOME": home},
			want: []string{"a http://127.0.0.1:1", "b http://127.0.0.1:2 !"},
		},
		"HUSH_CONFIG": {
			env:  map[string]string{"HUSH_CONFIG": cfgPath, "HOME": home},
			want: []string{"a http://127.0.0.1:1", "b http://127.0.0.1:2 !"},
		},
		"no HOME": {
			env: map[string]string{},
			err: "find the config file: $HOME is not defined; set HUSH_CONFIG to its path",
		},
		"no clusters": {
			env: map[string]string{"HUSH_CONFIG": filepath.Join(home, "none.yaml")},
			err: "no clusters: add one",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := Load(envOf(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range f.Clusters {
				s := c.Name + " " + c.Address
				if c.Broken != nil {
					s += " !"
				}
				got = append(got, s)
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("got clusters %q, want %q", got, tc.want)
			}
			if f.Direct != tc.direct {
				t.Errorf("got direct %v, want %v", f.Direct, tc.direct)
			}
		})
	}
}

// TestConfigSaveAndErrors checks that a saved config reads back, is
// written mode 0600, and that a mistake in it is reported with the file
// and line.
func TestConfigSaveAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hush", "config.yaml")
	env := envOf(map[string]string{EnvConfig: path})
	cfg, err := LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clusters = append(cfg.Clusters, &ClusterConfig{Name: "a", Address: "http://127.0.0.1:1", Token: "t"})
	cfg.Default = "a"
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got %v, %v; want the config written mode 0600", fi, err)
	}
	back, err := LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	if c := back.Cluster("a"); back.Default != "a" || c == nil || c.Token != "t" {
		t.Errorf("got default %q, cluster %+v; want what was saved", back.Default, c)
	}
	if err := os.WriteFile(path, []byte("clusters:\n  - name: a\n    adress: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(env)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), "line 3: field adress not found") {
		t.Errorf("got %v, want an error naming %s and line 3", err, path)
	}
}

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
