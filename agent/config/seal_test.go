package config

import (
	"strings"
	"testing"
)

func TestSealDiagnostics(t *testing.T) {
	tests := map[string]struct {
		src  string
		want []string // each in the diagnostics; nil means valid
	}{
		"file elsewhere": {src: "data_dir = \"/var/lib/hush\"\nseal \"file\" { path = \"/etc/hush/seal.key\" }\n"},
		"file beside":    {src: "data_dir = \"/var/lib/hush\"\nseal \"file\" {}\n"},
		"file inside the data dir": {
			src:  "data_dir = \"/var/lib/hush\"\nseal \"file\" {\n  path = \"/var/lib/hush/keys/seal.key\"\n}\n",
			want: []string{`x.hcl:3:3: Seal key inside the data dir; "/var/lib/hush/keys/seal.key" is inside the data dir`},
		},
		"file relative": {
			src:  "seal \"file\" {\n  path = \"seal.key\"\n}\n",
			want: []string{`x.hcl:2:3: Invalid seal key path`},
		},
		"file without path or data dir": {
			src:  "seal \"file\" {}\n",
			want: []string{`x.hcl:1:1: Missing seal key path`},
		},
		"env":            {src: "seal \"env\" { var = \"MY_KEY\" }\n"},
		"transit":        {src: "seal \"transit\" {\n  address = \"https://vault:8200\"\n  key_name = \"hush\"\n}\n"},
		"transit no key": {src: "seal \"transit\" {}\n", want: []string{`x.hcl:1:1: Missing key_name`}},
		"unknown kind":   {src: "seal \"kms\" {}\n", want: []string{`x.hcl:1:1: Unknown seal kind; seal "kms"`}},
		"two seals": {
			src:  "seal \"env\" {}\nseal \"file\" { path = \"/k\" }\n",
			want: []string{`Duplicate seal block`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, diags := LoadFiles(writeFile(t, "x.hcl", tc.src))
			got := FormatDiagnostics(diags)
			if tc.want == nil && diags.HasErrors() {
				t.Fatalf("got %s, want no errors", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestSealFor(t *testing.T) {
	tests := map[string]struct {
		cfg            Config
		dev            bool
		kind, path, ev string // kind "" means no seal
	}{
		"non-dev default":  {cfg: Config{DataDir: "/var/lib/hush/"}, kind: SealFile, path: "/var/lib/hush.seal.key"},
		"dev default":      {cfg: Config{DataDir: "/var/lib/hush"}, dev: true},
		"no data dir":      {cfg: Config{}},
		"file given":       {cfg: Config{DataDir: "/d", Seal: &SealConfig{Kind: SealFile, Path: "/etc/k"}}, kind: SealFile, path: "/etc/k"},
		"dev with a block": {cfg: Config{Seal: &SealConfig{Kind: SealEnv}}, dev: true, kind: SealEnv, ev: DefaultSealEnvVar},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := tc.cfg.SealFor(tc.dev)
			if tc.kind == "" {
				if s != nil {
					t.Fatalf("got seal %+v, want none", s)
				}
				return
			}
			if s == nil || s.Kind != tc.kind || s.Path != tc.path || s.Var != tc.ev {
				t.Fatalf("got %+v, want kind %q path %q var %q", s, tc.kind, tc.path, tc.ev)
			}
		})
	}
}
