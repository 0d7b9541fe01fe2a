package cli

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	app := newApp("test", newUI(context.Background(), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, nil))
	tests := map[string]struct {
		in, want []string
	}{
		"flag after name": {
			in:   []string{"hush", "delete", "secret", "a", "-y"},
			want: []string{"hush", "delete", "secret", "-y", "--", "a"},
		},
		"value flag after file": {
			in:   []string{"hush", "create", "secret", "mounted", "key.json", "--mount-path", "/x"},
			want: []string{"hush", "create", "secret", "mounted", "--mount-path", "/x", "--", "key.json"},
		},
		"flag=value form": {
			in:   []string{"hush", "get", "secrets", "-o=json"},
			want: []string{"hush", "get", "secrets", "-o=json"},
		},
		"alias and interleaving": {
			in:   []string{"hush", "delete", "secrets", "a", "--yes", "b"},
			want: []string{"hush", "delete", "secrets", "--yes", "--", "a", "b"},
		},
		"double dash keeps the rest positional": {
			in:   []string{"hush", "create", "secret", "env", "--name", "x", "--", "-A=1"},
			want: []string{"hush", "create", "secret", "env", "--name", "x", "--", "-A=1"},
		},
		"dash for stdin stays positional": {
			in:   []string{"hush", "create", "secret", "mounted", "-", "--name", "x"},
			want: []string{"hush", "create", "secret", "mounted", "--name", "x", "--", "-"},
		},
		"unknown command left alone": {
			in:   []string{"hush", "frobnicate", "-x"},
			want: []string{"hush", "frobnicate", "-x"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := reorderArgs(app, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	tests := map[string]struct {
		args    []string
		code    int
		wantErr string
	}{
		"unknown command":      {[]string{"hush", "frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		"unknown flag":         {[]string{"hush", "get", "secrets", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		"unknown secret type":  {[]string{"hush", "create", "secret", "magic"}, exitUsage, `unknown secret type "magic"`},
		"misspelt secret type": {[]string{"hush", "create", "secret", "mountd", "f"}, exitUsage, `unknown secret type "mountd" (did you mean "mounted"?)`},
		"bad output format":    {[]string{"hush", "get", "secrets", "-o", "xml"}, exitUsage, `unknown output format "xml"`},
		"missing argument":     {[]string{"hush", "create", "secret", "env"}, exitUsage, "takes one KEY=VALUE argument"},
		"missing flag":         {[]string{"hush", "create", "secret", "docker", "--server", "x"}, exitUsage, "missing --username"},
		"bad env key":          {[]string{"hush", "create", "secret", "env", "1X=y"}, exitUsage, `environment variable name "1X" is not valid`},
		"missing file":         {[]string{"hush", "create", "secret", "mounted", "/nonexistent/file"}, exitError, "file /nonexistent/file does not exist"},
		"version":              {[]string{"hush", "version"}, exitOK, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("HUSH_ADDR", "http://127.0.0.1:1")
			t.Setenv("HUSH_TOKEN", "x")
			var out, errb bytes.Buffer
			code := Run(context.Background(), "test", tc.args, strings.NewReader(""), &out, &errb)
			if code != tc.code {
				t.Errorf("got exit %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.wantErr)
			}
			if tc.code != exitOK && !strings.HasPrefix(errb.String(), "✗  ") {
				t.Errorf("stderr %q does not start with ✗", errb.String())
			}
		})
	}
}
