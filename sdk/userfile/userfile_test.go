package userfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("value.txt", "hello")
	big := write("big.txt", strings.Repeat("x", 11))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	linkToFile := filepath.Join(dir, "link")
	linkToFIFO := filepath.Join(dir, "link-fifo")
	for link, to := range map[string]string{linkToFile: file, linkToFIFO: fifo} {
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	tests := map[string]struct {
		path string
		want string // the content, or a part of the error
		kind fs.FileMode
	}{
		"regular file":         {path: file, want: "hello"},
		"link to a file":       {path: linkToFile, want: "hello"},
		"named pipe":           {path: fifo, want: fifo + " is a named pipe (FIFO), not a regular file", kind: fs.ModeNamedPipe},
		"link to a pipe":       {path: linkToFIFO, want: "is a named pipe (FIFO)", kind: fs.ModeNamedPipe},
		"directory":            {path: dir, want: dir + " is a directory, not a regular file: give the path of a file", kind: fs.ModeDir},
		"character device":     {path: os.DevNull, want: "/dev/null is a character device", kind: fs.ModeCharDevice},
		"socket":               {path: sock, want: "is a socket", kind: fs.ModeSocket},
		"over the limit":       {path: big, want: big + " is 11 bytes; the limit is 10 bytes"},
		"missing":              {path: filepath.Join(dir, "nope"), want: "no such file or directory"},
		"exactly at the limit": {path: write("ten.txt", "0123456789"), want: "0123456789"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			type answer struct {
				b   []byte
				err error
			}
			done := make(chan answer, 1)
			go func() { b, err := ReadFile(tc.path, 10); done <- answer{b, err} }()
			var a answer
			select {
			case a = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("ReadFile(%s) still blocks after 5s", tc.path)
			}
			if a.err == nil {
				if string(a.b) != tc.want {
					t.Errorf("got %q, want %q", a.b, tc.want)
				}
				return
			}
			if !strings.Contains(a.err.Error(), tc.want) {
				t.Errorf("got error %q, want it to contain %q", a.err, tc.want)
			}
			var nr *NotRegularError
			if got := errors.As(a.err, &nr); got != (tc.kind != 0) {
				t.Errorf("got *NotRegularError %v, want %v", got, tc.kind != 0)
			} else if got && nr.Mode&tc.kind == 0 {
				t.Errorf("got mode %v, want %v set", nr.Mode, tc.kind)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(dir, "nope"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	var tl *TooLargeError
	if _, err := ReadFile(big, 10); !errors.As(err, &tl) || tl.Size != 11 || tl.Limit != 10 {
		t.Errorf("big file: got %v, want *TooLargeError{Size: 11, Limit: 10}", err)
	}
}

func TestFormatSize(t *testing.T) {
	tests := map[int64]string{
		0:                "0 bytes",
		1023:             "1023 bytes",
		1 << 10:          "1 KiB",
		1536:             "1.5 KiB",
		1 << 20:          "1 MiB",
		41 * 1000 * 1000: "39.1 MiB",
		2<<20 + 1:        "2.0 MiB",
	}
	for n, want := range tests {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d): got %q, want %q", n, got, want)
		}
	}
}
