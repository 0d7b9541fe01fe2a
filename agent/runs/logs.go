package runs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/hush-sh/hush/agent/store"
)

// A run's log is a file of sealed records: a 4-byte big-endian length,
// then the chunk of output sealed under the agent's keyring with the run id
// and the record's sequence number as additional data. A workload that
// prints a secret thus leaves no plaintext in the data dir, and records
// cannot be reordered or moved between runs.

// maxRecord bounds one record, so a corrupt length cannot ask for gigabytes.
const maxRecord = 1 << 20

// logWriter appends a run's output to its log and wakes followers.
type logWriter struct {
	id      string
	keyring *store.Keyring

	mu     sync.Mutex
	f      *os.File
	seq    uint64
	done   bool
	notify chan struct{} // closed and replaced at each write and at the end
}

func createLog(path, id string, kr *store.Keyring) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create run log: %w", err)
	}
	return &logWriter{id: id, keyring: kr, f: f, notify: make(chan struct{})}, nil
}

func logAAD(id string, seq uint64) []byte {
	return []byte("logs/" + id + "/" + strconv.FormatUint(seq, 10))
}

// Write seals p as one record.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return 0, errors.New("run log is closed")
	}
	for off := 0; off < len(p); off += maxRecord / 2 {
		chunk := p[off:min(off+maxRecord/2, len(p))]
		sealed, err := l.keyring.Seal(chunk, logAAD(l.id, l.seq))
		if err != nil {
			return 0, err
		}
		rec := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(sealed)), uint32(len(sealed)))
		if _, err := l.f.Write(append(rec, sealed...)); err != nil {
			return 0, fmt.Errorf("write run log: %w", err)
		}
		l.seq++
	}
	close(l.notify)
	l.notify = make(chan struct{})
	return len(p), nil
}

// Close marks the log complete and closes its file.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	close(l.notify)
	return l.f.Close()
}

// state returns whether the log is complete, and a channel closed at the
// next change.
func (l *logWriter) state() (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.notify
}

// logReader reads a run's log records in order.
type logReader struct {
	id      string
	keyring *store.Keyring
	f       *os.File
	r       *bufio.Reader
	seq     uint64
	pending []byte // a partly written record
}

func openLog(path, id string, kr *store.Keyring) (*logReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open run log: %w", err)
	}
	return &logReader{id: id, keyring: kr, f: f, r: bufio.NewReader(f)}, nil
}

func (lr *logReader) Close() error { return lr.f.Close() }

// next returns the next chunk, or io.EOF when the records written so far
// are used up.
func (lr *logReader) next() ([]byte, error) {
	for {
		if len(lr.pending) >= 4 {
			n := int(binary.BigEndian.Uint32(lr.pending))
			if n > maxRecord+64 {
				return nil, fmt.Errorf("run log record %d is corrupt", lr.seq)
			}
			if len(lr.pending) >= 4+n {
				sealed := lr.pending[4 : 4+n]
				lr.pending = lr.pending[4+n:]
				plain, err := lr.keyring.Open(sealed, logAAD(lr.id, lr.seq))
				if err != nil {
					return nil, fmt.Errorf("run log record %d: %w", lr.seq, err)
				}
				lr.seq++
				return plain, nil
			}
		}
		buf := make([]byte, 32<<10)
		k, err := lr.r.Read(buf)
		lr.pending = append(lr.pending, buf[:k]...)
		if k == 0 && err != nil {
			return nil, err
		}
	}
}

// copyLog writes a run's log to w: the last tail lines (all when tail is
// negative), then, when follow is set and live is not nil, what the run
// writes until it ends or ctx is done. flush is called after each batch.
func copyLog(ctx context.Context, lr *logReader, live *logWriter, follow bool, tail int, w io.Writer, flush func()) error {
	var buf bytes.Buffer
	drain := func(out io.Writer) error {
		for {
			chunk, err := lr.next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := out.Write(chunk); err != nil {
				return err
			}
		}
	}
	done, changed := true, (<-chan struct{})(nil)
	if live != nil {
		done, changed = live.state()
	}
	if tail >= 0 {
		if err := drain(&buf); err != nil {
			return err
		}
		if _, err := w.Write(lastLines(buf.Bytes(), tail)); err != nil {
			return err
		}
	} else if err := drain(w); err != nil {
		return err
	}
	flush()
	for follow && !done {
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
		done, changed = live.state()
		if err := drain(w); err != nil {
			return err
		}
		flush()
	}
	return nil
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
