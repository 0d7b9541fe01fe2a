package config

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestTLSBlock(t *testing.T) {
	c, diags := LoadFiles(writeFile(t, "x.hcl", `
bind = "0.0.0.0:4747"
tls {
  cert_file       = "/etc/hush/server.pem"
  key_file        = "/etc/hush/server-key.pem"
  ca_file         = "/etc/hush/ca.pem"
  verify_incoming = true
  min_version     = "tls13"
}
`))
	if diags.HasErrors() {
		t.Fatal(FormatDiagnostics(diags))
	}
	if !c.TLSEnabled() || c.TLS.CertFile != "/etc/hush/server.pem" || !c.TLS.VerifyIncoming {
		t.Errorf("got tls %+v, want the block's settings", c.TLS)
	}
	if got := c.TLS.MinTLSVersion(); got != tls.VersionTLS13 {
		t.Errorf("got min version %x, want TLS 1.3", got)
	}
	if got := (&TLSConfig{}).MinTLSVersion(); got != tls.VersionTLS12 {
		t.Errorf("got default min version %x, want TLS 1.2", got)
	}
}

func TestTLSDiagnostics(t *testing.T) {
	tests := map[string]struct {
		src  string
		want []string // each a line of the diagnostics; nil means valid
	}{
		"plain HTTP on every address": {
			src:  `bind = "0.0.0.0:4747"`,
			want: []string{`x.hcl:1:1: Plain HTTP on a network address; "0.0.0.0:4747" is reachable from other hosts`},
		},
		"plain HTTP on a LAN address": {
			src:  `bind = "10.1.2.3:4747"`,
			want: []string{`x.hcl:1:1: Plain HTTP on a network address`},
		},
		"plain HTTP on an empty host": {
			src:  `bind = ":4747"`,
			want: []string{`x.hcl:1:1: Plain HTTP on a network address`},
		},
		"plain HTTP allowed explicitly": {src: "bind = \"0.0.0.0:4747\"\ninsecure_http = true\n"},
		"plain HTTP on loopback":        {src: `bind = "127.0.0.2:4747"`},
		"plain HTTP on IPv6 loopback":   {src: `bind = "[::1]:4747"`},
		"plain HTTP on localhost":       {src: `bind = "localhost:4747"`},
		"every TLS problem at once": {
			src: `bind = "0.0.0.0:4747"
insecure_http = true
tls {
  cert_file       = "server.pem"
  verify_incoming = true
  min_version     = "tls11"
}
`,
			want: []string{
				`x.hcl:3:1: Missing key_file; the tls block needs key_file`,
				`x.hcl:4:3: Invalid cert_file; "server.pem" must be an absolute path`,
				`x.hcl:5:3: Missing ca_file; verify_incoming needs ca_file`,
				`x.hcl:6:3: Invalid TLS version; "tls11" must be "tls12" or "tls13"`,
				`x.hcl:2:1: Conflicting settings; insecure_http allows plain HTTP, but a tls block is set`,
			},
		},
		"empty tls block": {
			src:  "tls {}\n",
			want: []string{`x.hcl:1:1: Missing cert_file`, `x.hcl:1:1: Missing key_file`},
		},
		"unknown tls attribute": {
			src:  "tls {\n  verify_outgoing = true\n}\n",
			want: []string{`x.hcl:2:3: Unsupported argument`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, diags := LoadFiles(writeFile(t, "x.hcl", tc.src))
			got := FormatDiagnostics(diags)
			if tc.want == nil && diags.HasErrors() {
				t.Fatalf("got %s, want no problems", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got\n%s\nwant a line containing %q", got, w)
				}
			}
			if n := len(strings.Split(got, "\n")); tc.want != nil && n != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%s", n, len(tc.want), got)
			}
		})
	}
}
