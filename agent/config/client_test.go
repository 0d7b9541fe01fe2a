package config

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsBlock is what a client-only agent needs besides its servers.
const tlsBlock = `tls {
  cert_file = "/etc/hush/node.pem"
  key_file  = "/etc/hush/node-key.pem"
  ca_file   = "/etc/hush/ca.pem"
  verify_incoming = true
}
`

func TestClientRoles(t *testing.T) {
	tests := map[string]struct {
		src                       string
		enabled, only, runs, serv bool
	}{
		"plain agent":                  {src: "", runs: true},
		"server":                       {src: "server { enabled = true }\n", runs: true, serv: true},
		"server not running":           {src: "server { enabled = true }\nclient { enabled = false }\n", serv: true},
		"server and client":            {src: "server { enabled = true }\nclient { enabled = true }\n", enabled: true, runs: true, serv: true},
		"client block without enabled": {src: "client { node_class = \"gpu\" }\n", runs: true},
		"client only": {src: "client {\n  enabled = true\n  servers = [\"10.0.0.1:4747\"]\n}\n" + tlsBlock,
			enabled: true, only: true, runs: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, diags := LoadFiles(writeFile(t, "x.hcl", tc.src))
			if diags.HasErrors() {
				t.Fatal(FormatDiagnostics(diags))
			}
			if got := [4]bool{c.ClientEnabled(), c.ClientOnly(), c.RunsWorkloads(), c.ServerEnabled()}; got != [4]bool{tc.enabled, tc.only, tc.runs, tc.serv} {
				t.Errorf("got enabled, client only, runs workloads, server = %v, want %v", got, [4]bool{tc.enabled, tc.only, tc.runs, tc.serv})
			}
		})
	}
}

// A later file's client block sets what it names over an earlier one's,
// as the server and tls blocks do, and an earlier file's block stays when
// a later one has none.
func TestClientBlockOverride(t *testing.T) {
	a := writeFile(t, "a.hcl", "client {\n  enabled = false\n  node_class = \"cpu\"\n}\n")
	b := writeFile(t, "b.hcl", "client {\n  node_class = \"gpu\"\n  meta = { rack = \"r1\", zone = \"eu\" }\n}\n")
	c2 := writeFile(t, "c.hcl", "cluster = \"east\"\n")
	c, diags := LoadFiles(a, b, c2)
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	if c.RunsWorkloads() {
		t.Errorf("got runs workloads true, want a.hcl's enabled = false kept under b.hcl's block without enabled")
	}
	want := map[string]string{"node_class": "gpu", "rack": "r1", "zone": "eu"}
	if got := c.NodeLabels(); !maps.Equal(got, want) {
		t.Errorf("got labels %v, want %v", got, want)
	}
	if got := (&Config{}).NodeLabels(); len(got) != 0 {
		t.Errorf("got labels %v without a client block, want none", got)
	}
}

func TestNodeTTL(t *testing.T) {
	tests := map[string]struct {
		src  string
		want time.Duration
	}{
		"default":           {src: "", want: 30 * time.Second},
		"server block only": {src: "server { enabled = false }\n", want: 30 * time.Second},
		"set":               {src: "server { node_ttl = \"1m30s\" }\n", want: 90 * time.Second},
		"smallest":          {src: "server { node_ttl = \"1s\" }\n", want: time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, diags := LoadFiles(writeFile(t, "x.hcl", tc.src))
			if diags.HasErrors() {
				t.Fatal(FormatDiagnostics(diags))
			}
			if got := c.NodeTTL(); got != tc.want {
				t.Errorf("got node TTL %s, want %s", got, tc.want)
			}
		})
	}
}

func TestClientDiagnostics(t *testing.T) {
	tests := map[string]struct {
		src  string
		want []string
	}{
		"node_ttl too short": {
			src:  "server {\n  node_ttl = \"500ms\"\n}\n",
			want: []string{`x.hcl:2:3: Invalid node TTL; "500ms": give how long the leader waits for a node's heartbeat before it marks the node down, at least "1s"`},
		},
		"node_ttl not a duration": {
			src:  "server {\n  enabled = true\n  node_ttl = \"soon\"\n}\n",
			want: []string{`x.hcl:3:3: Invalid node TTL; "soon"`},
		},
		"bad server address": {
			src:  "client {\n  enabled = true\n  servers = [\"10.0.0.1\"]\n}\n",
			want: []string{`x.hcl:3:3: Invalid server address; "10.0.0.1" is not HOST:PORT`},
		},
		"bad meta keys": {
			src: "client {\n  node_class = \"a=b\"\n  meta = {\n    \"\" = \"x\"\n    node_class = \"gpu\"\n    \"my rack\" = \"r1\"\n    zone = \"a=b\"\n  }\n}\n",
			want: []string{
				`x.hcl:2:3: Invalid node class; "a=b" holds "="`,
				`x.hcl:3:3: Invalid meta key; a meta key is empty`,
				`x.hcl:3:3: Reserved meta key; "node_class" is the label of the client block's node_class`,
				`x.hcl:3:3: Invalid meta key; "my rack" holds a space`,
				`x.hcl:3:3: Invalid meta value; meta "zone": "a=b" holds "="`,
			},
		},
		"meta as a block": {
			src:  "client {\n  meta {\n    rack = \"r1\"\n  }\n}\n",
			want: []string{`x.hcl:2:3: Unsupported block type`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "x.hcl", tc.src)
			_, diags := LoadFiles(p)
			got := strings.ReplaceAll(FormatDiagnostics(diags), filepath.Dir(p)+"/", "")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got\n%s\nwant a line containing %q", got, w)
				}
			}
			if n := len(diags); n != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%s", n, len(tc.want), got)
			}
		})
	}
}

func TestCheckClient(t *testing.T) {
	const servers = "  servers = [\"10.0.0.1:4747\", \"10.0.0.2:4747\"]\n"
	tests := map[string]struct {
		src  string
		dev  bool
		want []string // each a line of the error; nil means none
	}{
		"plain agent":        {src: ""},
		"plain dev agent":    {src: "", dev: true},
		"client only":        {src: "client {\n  enabled = true\n" + servers + "}\n" + tlsBlock},
		"server not running": {src: "server { enabled = true }\nclient { enabled = false }\n"},
		"client in dev mode": {
			src: "client {\n  enabled = true\n" + servers + "}\n" + tlsBlock, dev: true,
			want: []string{"x.hcl:2:3: Client in dev mode; a dev agent is a cluster of its own"},
		},
		"client without servers or TLS": {
			src: "client {\n  enabled = true\n}\n",
			want: []string{
				"x.hcl:2:3: Missing servers; a client agent registers with the cluster's servers",
				"x.hcl:2:3: Missing TLS; the servers demand mutual TLS",
			},
		},
		"client without ca_file": {
			src:  "client {\n  enabled = true\n" + servers + "}\ntls {\n  cert_file = \"/c.pem\"\n  key_file = \"/k.pem\"\n}\n",
			want: []string{"x.hcl:2:3: Missing TLS; the servers demand mutual TLS, and call the client back, with their own certificates, for its runs' logs: add a tls block with cert_file, key_file, ca_file and verify_incoming = true"},
		},
		"client bound to every address": {
			src:  "bind = \"0.0.0.0:4747\"\nclient {\n  enabled = true\n" + servers + "}\n" + tlsBlock,
			want: []string{"x.hcl:3:3: Missing advertise; the agent binds 0.0.0.0:4747, which the servers cannot dial back"},
		},
		"client bound to every address, advertised": {
			src: "bind = \"0.0.0.0:4747\"\nclient {\n  enabled = true\n  advertise = \"10.0.1.11:4747\"\n" + servers + "}\n" + tlsBlock,
		},
		"servers without enabled": {
			src:  "client {\n" + servers + "}\n" + tlsBlock,
			want: []string{"x.hcl:2:3: Client not enabled; servers are given but the agent is not a client of them: set enabled = true in the client block, or pass -client."},
		},
		"servers on a server": {
			src:  "server { enabled = true }\nclient {\n  enabled = true\n" + servers + "}\n",
			want: []string{"x.hcl:4:3: Servers on a server; a server places its own workloads: remove client.servers"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, "x.hcl", tc.src)
			c, diags := LoadFiles(p)
			if diags.HasErrors() {
				t.Fatal(FormatDiagnostics(diags))
			}
			err := c.CheckClient(tc.dev)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tc.want)
			}
			lines := strings.Split(strings.ReplaceAll(err.Error(), filepath.Dir(p)+"/", ""), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("got\n%s\nwant it to start with %q", lines[i], w)
				}
			}
		})
	}
}

// Flags have no source range: a client made by them alone is reported
// without one.
func TestCheckClientFromFlags(t *testing.T) {
	c := DefaultConfig()
	on := true
	c.Client = &ClientConfig{Enabled: &on}
	err := c.CheckClient(false)
	if err == nil || !strings.HasPrefix(err.Error(), "Missing servers; ") {
		t.Errorf("got %v, want Missing servers without a position", err)
	}
}
