package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, diags := LoadFiles()
	if diags.HasErrors() {
		t.Fatalf("defaults do not validate: %s", FormatDiagnostics(diags))
	}
	if c.Bind != DefaultBind || c.Cluster != DefaultCluster || c.LogLevel != DefaultLogLevel {
		t.Errorf("got bind %q cluster %q log level %q, want the defaults", c.Bind, c.Cluster, c.LogLevel)
	}
	if got := c.MaxLogBytes(); got != 64<<20 {
		t.Errorf("got max_log_size %d bytes, want 64 MiB", got)
	}
	rt := c.Runtime(RuntimeContainerd)
	if rt.Namespace != DefaultNamespace || rt.StopGraceDuration() != 10*time.Second {
		t.Errorf("got containerd namespace %q grace %s, want hush and 10s", rt.Namespace, rt.StopGraceDuration())
	}
}

func TestLaterFilesOverride(t *testing.T) {
	a := writeFile(t, "a.hcl", `
data_dir  = "/var/lib/hush"
bind      = "0.0.0.0:4747"
insecure_http = true
cluster   = "east"
log_json  = true
plugin "vault" {
  path   = "/opt/a"
  config { address = "https://a" }
}
plugin "file" { path = "/opt/file" }
runtime "containerd" { namespace = "one" }
`)
	b := writeFile(t, "b.hcl", `
cluster = "west"
plugin "vault" { path = "/opt/b" }
runtime "containerd" { stop_grace = "3s" }
`)
	c, diags := LoadFiles(a, b)
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	if c.Cluster != "west" || c.Bind != "0.0.0.0:4747" || c.DataDir != "/var/lib/hush" || !c.LogJSON {
		t.Errorf("got cluster %q bind %q data_dir %q log_json %v, want west, 0.0.0.0:4747, /var/lib/hush, true",
			c.Cluster, c.Bind, c.DataDir, c.LogJSON)
	}
	if len(c.Plugins) != 2 {
		t.Fatalf("got %d plugins, want 2", len(c.Plugins))
	}
	if c.Plugins[0].Name != "vault" || c.Plugins[0].Path != "/opt/b" || c.Plugins[0].Config != nil {
		t.Errorf("got plugin %+v, want vault from b.hcl replacing a.hcl's block", c.Plugins[0])
	}
	rt := c.Runtime(RuntimeContainerd)
	if rt.Namespace != DefaultNamespace || rt.StopGraceDuration() != 3*time.Second {
		t.Errorf("got namespace %q grace %s, want b.hcl's block: hush and 3s", rt.Namespace, rt.StopGraceDuration())
	}
}

func TestDiagnostics(t *testing.T) {
	tests := map[string]struct {
		src  string
		fifo bool // a named pipe instead of a file
		want []string
	}{
		"syntax error": {
			src:  "bind = \n",
			want: []string{"x.hcl:1:"},
		},
		"unknown attribute": {
			src:  "bnid = \"x\"\n",
			want: []string{`x.hcl:1:1: Unsupported argument`},
		},
		"wrong type": {
			src:  "log_json = \"maybe\"\n",
			want: []string{"x.hcl:1:13: Unsuitable value type; Unsuitable value: a bool is required"},
		},
		"every problem at once": {
			src: `bind = "nowhere"
cluster = "East Coast"
log_level = "loud"
plugin "vault" {
  path   = "relative/path"
  sha256 = "abc"
}
runtime "docker" {}
runtime "containerd" { stop_grace = "soon" }
runtime "exec" { address = "/run/x.sock" }
`,
			want: []string{
				"x.hcl:1:1: Invalid bind address",
				"x.hcl:2:1: Invalid cluster name",
				"x.hcl:3:1: Invalid log level; \"loud\" is not one of trace, debug, info, warn, error",
				"x.hcl:5:3: Invalid plugin path",
				"x.hcl:6:3: Invalid plugin checksum",
				"x.hcl:8:1: Unknown runtime",
				"x.hcl:9:24: Invalid stop grace period",
				"x.hcl:10:18: Unsupported argument; runtime \"exec\" has no address",
			},
		},
		"bad allow blocks": {
			src: `plugin "file" {
  path = "/opt/f"
  allow {
    users = ["Bob Smith"]
    refs  = "alice/*"
  }
  allow {
    users = []
    refs  = ["${usr}/*"]
  }
  allow {
    users = ["*"]
    refs  = [""]
  }
}
`,
			want: []string{
				`x.hcl:4:13: Invalid allow user; plugin "file": "Bob Smith" is not a user name`,
				`x.hcl:5:13: Invalid allow refs; refs must be a list of strings`,
				`x.hcl:8:13: Empty allow users`,
				`x.hcl:9:17: Unknown variable; There is no variable named "usr"`,
				`x.hcl:13:13: Empty allow pattern`,
			},
		},
		"relative data dir": {
			src:  "cluster = \"east\"\ndata_dir = \"./data\"\n",
			want: []string{`x.hcl:2:1: Invalid data directory; "./data" must be an absolute path, such as /var/lib/hush.`},
		},
		"config file is a named pipe": {
			fifo: true,
			want: []string{"Cannot read config file; x.hcl: x.hcl is a named pipe (FIFO), not a regular file"},
		},
		"log size not a size": {
			src:  "bind = \"127.0.0.1:1\"\nmax_log_size = \"lots\"\n",
			want: []string{`x.hcl:2:1: Invalid log size; "lots": give a number of bytes`},
		},
		"log size too small": {
			src:  "max_log_size = \"4KiB\"\n",
			want: []string{`x.hcl:1:1: Invalid log size; "4KiB" is below the smallest log cap: give at least "64KiB"`},
		},
		"plugin timeouts": {
			src: `plugin "a" {
  path    = "/a"
  timeout = "soon"
}
plugin "b" {
  path    = "/b"
  timeout = "500ms"
}
`,
			want: []string{
				`x.hcl:3:3: Invalid plugin timeout; plugin "a": "soon": give how long one Resolve call may take, at least "1s", such as "30s".`,
				`x.hcl:7:3: Invalid plugin timeout; plugin "b": "500ms"`,
			},
		},
		"plugin without a path": {
			src:  "plugin \"vault\" {}\n",
			want: []string{"x.hcl:1:1: Missing plugin path"},
		},
		"duplicate block": {
			src:  "plugin \"a\" { path = \"/a\" }\nplugin \"a\" { path = \"/b\" }\n",
			want: []string{`x.hcl:2:1: Duplicate plugin block "a"; It is already declared at x.hcl:1,1-11`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "x.hcl", tc.src)
			if tc.fifo {
				os.Remove(p)
				if err := syscall.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var diags hcl.Diagnostics
			loaded := make(chan struct{})
			go func() { _, diags = LoadFiles(p); close(loaded) }()
			select {
			case <-loaded:
			case <-time.After(5 * time.Second):
				t.Fatal("LoadFiles still blocked after 5s")
			}
			if !diags.HasErrors() {
				t.Fatal("got no error, want one")
			}
			got := strings.ReplaceAll(FormatDiagnostics(diags), filepath.Dir(p)+"/", "")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("diagnostics lack %q; got:\n%s", w, got)
				}
			}
			if n := len(diags); n < len(tc.want) {
				t.Errorf("got %d diagnostics, want at least %d", n, len(tc.want))
			}
		})
	}
}

func TestMaxLogSize(t *testing.T) {
	c, diags := LoadFiles(writeFile(t, "x.hcl", "max_log_size = \"1.5GiB\"\n"))
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	if got, want := c.MaxLogBytes(), int64(3<<29); got != want {
		t.Errorf("got %d bytes, want %d", got, want)
	}
}

func TestMissingFile(t *testing.T) {
	_, diags := LoadFiles(filepath.Join(t.TempDir(), "nope.hcl"))
	if got := FormatDiagnostics(diags); !strings.Contains(got, "nope.hcl") || !strings.Contains(got, "no such file") {
		t.Errorf("got %q, want the file name and the reason", got)
	}
}

func TestPluginConfigJSON(t *testing.T) {
	p := writeFile(t, "p.hcl", `plugin "vault" {
  path = "/opt/v"
  config {
    address = "https://vault:8200"
    kv_version = 2
    approle = { role_id = "r", mount = "approle" }
  }
}
plugin "bad" {
  path = "/opt/b"
  config {
    nested { x = 1 }
  }
}
`)
	_, diags := LoadFiles(p)
	if got := FormatDiagnostics(diags); !strings.Contains(got, "p.hcl:12:5: Unexpected \"nested\" block") {
		t.Errorf("got %q, want the nested block reported", got)
	}
	c := DefaultConfig()
	if d := c.decode("p.hcl", []byte(`plugin "vault" {
  path = "/opt/v"
  config {
    address = "https://vault:8200"
    kv_version = 2
    approle = { role_id = "r", mount = "approle" }
  }
}`)); d.HasErrors() {
		t.Fatal(FormatDiagnostics(d))
	}
	b, d := c.Plugins[0].ConfigJSON()
	want := `{"address":"https://vault:8200","approle":{"mount":"approle","role_id":"r"},"kv_version":2}`
	if d.HasErrors() || string(b) != want {
		t.Errorf("got %s (%s), want %s", b, FormatDiagnostics(d), want)
	}
}

func TestPluginResolveTimeout(t *testing.T) {
	tests := map[string]struct {
		block string
		want  time.Duration
	}{
		"default":   {block: "plugin \"a\" {\n  path = \"/a\"\n}\n", want: 30 * time.Second},
		"set":       {block: "plugin \"a\" {\n  path = \"/a\"\n  timeout = \"2m\"\n}\n", want: 2 * time.Minute},
		"the least": {block: "plugin \"a\" {\n  path = \"/a\"\n  timeout = \"1s\"\n}\n", want: time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, diags := LoadFiles(writeFile(t, "x.hcl", tc.block))
			if diags.HasErrors() {
				t.Fatal(FormatDiagnostics(diags))
			}
			if got := c.Plugins[0].ResolveTimeout(); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
