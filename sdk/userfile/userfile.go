// Package userfile reads the files that a person names, on a command line
// or in a spec, without hanging on what is not a file. A named pipe, a
// device, a socket or a directory is refused before anything is read from
// it (a named pipe with no writer would block a plain open forever), and
// every read is bounded.
package userfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// NotRegularError reports a path that is not a regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file: give the path of a file", e.Path, Kind(e.Mode))
}

// TooLargeError reports a file larger than its reader allows.
type TooLargeError struct {
	Path string
	// Size is the file's size, or a lower bound of it when the file grew
	// while it was read.
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %s; the limit is %s", e.Path, FormatSize(e.Size), FormatSize(e.Limit))
}

// Kind names the kind of file that mode describes, for messages: "a
// directory", "a named pipe (FIFO)" and so on.
func Kind(mode fs.FileMode) string {
	switch {
	case mode.IsRegular():
		return "a regular file"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// Open opens the regular file at path for reading, following symbolic
// links. Anything else gives a *NotRegularError without blocking: the path
// is checked before it is opened, so that no device is opened at all, and
// it is opened without waiting (O_NONBLOCK) and checked again, so that a
// named pipe put in its place in between cannot hang the caller either.
// Errors from the file system keep their *fs.PathError, so errors.Is(err,
// fs.ErrNotExist) works.
func Open(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: st.Mode()}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, err
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = &NotRegularError{Path: path, Mode: st.Mode()}
		}
		return nil, err
	}
	return f, nil
}

// ReadFile reads the whole regular file at path, as Open opens it. A file
// of more than limit bytes gives a *TooLargeError, found from its size
// before it is read and checked again while it is read.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, &TooLargeError{Path: path, Size: st.Size(), Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			err = &fs.PathError{Op: "read", Path: path, Err: err}
		}
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Size: int64(len(b)), Limit: limit}
	}
	return b, nil
}

// FormatSize renders a number of bytes for people: "512 bytes", "1.5 KiB",
// "41.0 MiB"; whole MiB and KiB show no fraction ("1 MiB").
func FormatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
