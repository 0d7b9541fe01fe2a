package runlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/hush-sh/hush/agent/store"
)

// Runs of hush 0.1 left their log as one file, logs/<run-id>.log, of
// records [len u32][chunk sealed with AAD "logs/<run-id>/<seq>"], which
// can only be read forwards. Those runs have all ended (an upgraded agent
// cannot adopt their workloads, whose output nothing reads any more, and
// marks them LOST), so their logs are read, never written or followed.

// LegacyReader reads a hush 0.1 run log's records in order.
type LegacyReader struct {
	id      string
	keyring *store.Keyring
	f       *os.File
	r       *bufio.Reader
	seq     uint64
	pending []byte // a partly read record
}

// OpenLegacy opens run id's hush 0.1 log at path, sealed under kr; the
// error wraps os.ErrNotExist when there is none.
func OpenLegacy(path, id string, kr *store.Keyring) (*LegacyReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open run log: %w", err)
	}
	return &LegacyReader{id: id, keyring: kr, f: f, r: bufio.NewReader(f)}, nil
}

// Close closes the log.
func (lr *LegacyReader) Close() error { return lr.f.Close() }

func legacyAAD(id string, seq uint64) []byte {
	return []byte("logs/" + id + "/" + strconv.FormatUint(seq, 10))
}

// next returns the next chunk, or io.EOF after the last whole record.
func (lr *LegacyReader) next() ([]byte, error) {
	for {
		if len(lr.pending) >= 4 {
			n := int(binary.BigEndian.Uint32(lr.pending))
			if n > maxRecord+64 {
				return nil, fmt.Errorf("run log record %d is corrupt", lr.seq)
			}
			if len(lr.pending) >= 4+n {
				sealed := lr.pending[4 : 4+n]
				lr.pending = lr.pending[4+n:]
				plain, err := lr.keyring.Open(sealed, legacyAAD(lr.id, lr.seq))
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

// CopyLegacy writes a hush 0.1 log to w: its last tail lines, or all of
// it when tail is negative. The log can only be read forwards, so a tail
// scans all of it, but keeps no more than the lines it will print and the
// chunk at hand.
func CopyLegacy(lr *LegacyReader, tail int, w io.Writer) error {
	var buf []byte
	trimAt := 64 << 10
	for {
		chunk, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if tail < 0 {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, chunk...)
		if len(buf) > trimAt {
			// The last lines of what has been read so far hold the last
			// lines of the whole log, as later output only adds lines.
			buf = append(buf[:0], lastLines(buf, tail)...)
			trimAt = max(64<<10, 2*len(buf))
		}
	}
	if tail < 0 {
		return nil
	}
	_, err := w.Write(lastLines(buf, tail))
	return err
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

// eachLegacyChunk calls fn with each whole record of a hush 0.1 log; sealed
// is the record's chunk within b.
func eachLegacyChunk(b []byte, fn func(seq uint64, sealed []byte) error) error {
	var seq uint64
	for at := 0; at+4 <= len(b); seq++ {
		n := int(binary.BigEndian.Uint32(b[at:]))
		if n > maxRecord+64 || at+4+n > len(b) {
			return nil
		}
		if err := fn(seq, b[at+4:at+4+n]); err != nil {
			return err
		}
		at += 4 + n
	}
	return nil
}

// LegacyKeysUsed returns the ids of the keyring keys that seal the hush
// 0.1 log of run id at path.
func LegacyKeysUsed(path string) ([]uint32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read run log: %w", err)
	}
	var keys []uint32
	err = eachLegacyChunk(b, func(_ uint64, sealed []byte) error {
		if k, ok := store.KeyOf(sealed); ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}

// ResealLegacy seals again under kr's active key the chunks of run id's
// hush 0.1 log at path that another key sealed, rewriting the file whole
// through a rename, and reports whether it did.
func ResealLegacy(path, id string, kr *store.Keyring) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read run log: %w", err)
	}
	changed := false
	err = eachLegacyChunk(b, func(seq uint64, sealed []byte) error {
		done, err := resealChunk(kr, sealed, legacyAAD(id, seq))
		if err != nil {
			return fmt.Errorf("run log of run %s, record %d: %w", id, seq, err)
		}
		changed = changed || done
		return nil
	})
	if err != nil || !changed {
		return false, err
	}
	if err := store.WriteFileAtomic(path, b, 0o600); err != nil {
		return false, fmt.Errorf("write run log: %w", err)
	}
	return true, nil
}
