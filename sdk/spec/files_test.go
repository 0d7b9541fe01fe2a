package spec

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test when f does not return within a few seconds: a
// named pipe must be refused, not waited on.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("still blocked after 5s")
		return nil
	}
}

// TestParseNotARegularFile checks that run specs, secrets files and the
// files secrets files name are refused, without blocking, when they are a
// directory or a named pipe, and that what is wrong is said first: a
// directory has no extension either.
func TestParseNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	specDir := filepath.Join(dir, "specs")
	fifo := filepath.Join(dir, "run.yaml")
	for _, err := range []error{os.Mkdir(specDir, 0o700), syscall.Mkfifo(fifo, 0o600)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		parse func() error
		want  string
	}{
		"run spec is a directory": {
			parse: func() error { _, _, err := ParseFile(specDir); return err },
			want:  "run spec " + specDir + " is a directory, not a regular file: give the path of a run spec file",
		},
		"run spec is a named pipe": {
			parse: func() error { _, _, err := ParseFile(fifo); return err },
			want:  "run spec " + fifo + " is a named pipe (FIFO), not a regular file",
		},
		"secrets file is a named pipe": {
			parse: func() error { _, _, err := ParseSecretsFile(fifo); return err },
			want:  "secrets file " + fifo + " is a named pipe (FIFO), not a regular file",
		},
		"file() names a named pipe": {
			parse: func() error {
				_, _, err := ParseSecrets(filepath.Join(dir, "secrets.hcl"), []byte(`secret "mounted" "key" { value = file("run.yaml") }`), nil)
				return err
			},
			want: `secret "key": value: file "run.yaml" (` + fifo + `) is a named pipe (FIFO), not a regular file`,
		},
		"value_from_file names a directory": {
			parse: func() error {
				src := "secrets:\n  - {type: mounted, name: key, value_from_file: specs}\n"
				_, _, err := ParseSecrets(filepath.Join(dir, "secrets.yaml"), []byte(src), nil)
				return err
			},
			want: `value: file "specs" (` + specDir + `) is a directory, not a regular file`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := within(t, tc.parse)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParseFileTooLarge checks that a run spec over MaxRunSpecSize is
// refused before parsing, with its name and size.
func TestParseFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	src := "name: big\nimage: busybox\ncommand: |\n  " + strings.Repeat("x", MaxRunSpecSize) + "\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "run spec " + path + " is 1.0 MiB, more than the 1 MiB a run spec may hold"
	if _, _, err := ParseFile(path); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got error %v, want it to contain %q", err, want)
	}
}
