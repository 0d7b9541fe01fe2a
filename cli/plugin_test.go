package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hush-sh/hush/agent/config"
)

func TestPluginChecksum(t *testing.T) {
	dir := t.TempDir()
	content := []byte("#!/bin/sh\necho plugin\n")
	h := sha256.Sum256(content)
	want := hex.EncodeToString(h[:])
	write := func(rel string, mode os.FileMode) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vault := write("hush-provider-vault", 0o755)
	plain := write("op", 0o755)
	quoted := write(`we"ird ${dir}/hush-provider-x`, 0o755)
	notExec := write("hush-provider-noexec", 0o644)

	tests := map[string]struct {
		args    []string
		code    int
		wantOut string // the whole of stdout, when set
		name    string // the block's name, when the block is checked by loading it
		path    string
		wantErr string
		cwd     string
	}{
		"prefixed name": {
			args:    []string{vault},
			wantOut: "plugin \"vault\" {\n  path   = \"" + vault + "\"\n  sha256 = \"" + want + "\"\n}\n",
			name:    "vault", path: vault,
		},
		"relative path":       {args: []string{"hush-provider-vault"}, cwd: dir, name: "vault", path: vault},
		"no prefix":           {args: []string{plain}, name: "op", path: plain},
		"characters to quote": {args: []string{quoted}, name: "x", path: quoted},
		"not executable":      {args: []string{notExec}, name: "noexec", path: notExec, wantErr: "chmod +x " + notExec},
		"missing file": {
			args: []string{filepath.Join(dir, "hush-provider-nope")}, code: exitError,
			wantErr: filepath.Join(dir, "hush-provider-nope") + " does not exist",
		},
		"directory":   {args: []string{dir}, code: exitError, wantErr: dir + " is a directory"},
		"no argument": {code: exitUsage, wantErr: "takes one PATH argument"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.cwd != "" {
				t.Chdir(tc.cwd)
			}
			var out, errb bytes.Buffer
			args := append([]string{"hush", "plugin", "checksum"}, tc.args...)
			if code := Run(context.Background(), "test", args, strings.NewReader(""), &out, &errb); code != tc.code {
				t.Fatalf("got exit %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("got stderr %q, want it to contain %q", errb.String(), tc.wantErr)
			}
			if tc.wantOut != "" && out.String() != tc.wantOut {
				t.Errorf("got:\n%s\nwant:\n%s", out.String(), tc.wantOut)
			}
			if tc.name == "" {
				if out.Len() != 0 {
					t.Errorf("got stdout %q, want nothing", out.String())
				}
				return
			}
			// The block is ready to paste: an agent config that holds it
			// loads, and names the file and its checksum.
			conf := filepath.Join(t.TempDir(), "agent.hcl")
			if err := os.WriteFile(conf, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			c, diags := config.LoadFiles(conf)
			if diags.HasErrors() {
				t.Fatalf("the printed block does not load: %s\n%s", config.FormatDiagnostics(diags), out.String())
			}
			if len(c.Plugins) != 1 {
				t.Fatalf("got %d plugin blocks, want 1", len(c.Plugins))
			}
			p := c.Plugins[0]
			if p.Name != tc.name || p.Path != tc.path || p.SHA256 != want {
				t.Errorf("got plugin %q path %q sha256 %q, want %q %q %q", p.Name, p.Path, p.SHA256, tc.name, tc.path, want)
			}
		})
	}
}
