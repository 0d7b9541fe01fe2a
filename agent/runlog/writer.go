// Package runlog writes and reads runs' logs: capped, sealed segments
// that a run's logger process appends to, and that the agent reads,
// follows and tails, whether the writer is in the same process or not.
package runlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
)

// A run's log is a directory, logs/<run-id>/, of segment files named
// NNNNNNNN.seg. Each segment is a magic string, then records:
//
//	[len u32][seq u64][off u64][sealed chunk: len bytes][len u32]
//
// all big-endian, where the chunk of output is sealed under the log's own
// key (key.go) with "logs/<run-id>/<seq>/<off>" as additional data: seq numbers
// the run's records from 0 and off counts the output bytes before the
// chunk. A workload that prints a secret thus leaves no plaintext in the
// data dir, records cannot be moved between runs or altered, and a reader
// that checks seq and off sees records that were reordered. The length at
// both ends lets a reader walk back from the end, so that a tail reads
// only what it prints.
//
// A log past its run's cap loses whole segments, oldest first. The off of
// the first record left says how much output was dropped, and readers
// print a marker line saying so.

const (
	segMagic = "hushlog3"
	// segMagicV2 begins the segments of logs from before log keys, whose
	// chunks are sealed under the agent's keyring itself.
	segMagicV2 = "hushlog2"
	segHeader  = int64(len(segMagic))
	recHead    = 4 + 8 + 8 // len, seq, off
	recTail    = 4         // len again
	// maxRecord bounds a sealed chunk, so that a corrupt length cannot ask
	// for gigabytes.
	maxRecord = 1 << 20
	// minSegment and maxSegment bound a segment's length: an eighth of the
	// cap, so that dropping one loses little of what the cap keeps, and
	// at most 8 MiB, so that a huge cap does not make huge files.
	minSegment = 4 << 10
	maxSegment = 8 << 20
)

// segmentSize returns the length of one segment of a log capped at limit.
func segmentSize(limit int64) int64 { return min(max(limit/8, minSegment), maxSegment) }

// chunkSize returns the largest chunk one record of such a segment holds,
// so that a record always fits in an empty segment.
func chunkSize(segSize int64) int { return int(min(maxRecord/2, segSize/4)) }

func segPath(dir string, index uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%08d.seg", index))
}

func logAAD(id string, seq, off uint64) []byte {
	return []byte("logs/" + id + "/" + strconv.FormatUint(seq, 10) + "/" + strconv.FormatUint(off, 10))
}

func encodeRecord(seq, off uint64, sealed []byte) []byte {
	rec := make([]byte, 0, recHead+len(sealed)+recTail)
	rec = binary.BigEndian.AppendUint32(rec, uint32(len(sealed)))
	rec = binary.BigEndian.AppendUint64(rec, seq)
	rec = binary.BigEndian.AppendUint64(rec, off)
	rec = append(rec, sealed...)
	return binary.BigEndian.AppendUint32(rec, uint32(len(sealed)))
}

// logPos is a place between records: a segment, a byte offset in its
// file, and, when known, the seq and output offset of the record that
// comes next there.
type logPos struct {
	seg      uint64
	at       int64
	seq, off uint64
	known    bool
}

// segFile is a segment the writer has finished.
type segFile struct {
	index uint64
	size  int64
}

// Writer appends a run's output to its log, drops the oldest segments
// past the cap, and wakes followers.
type Writer struct {
	dir, id string
	keyring *store.Keyring
	limit   int64 // the cap on the log's bytes on disk
	segSize int64
	logger  hclog.Logger

	// masks, when it holds a value, are the values that Drain masks, read
	// from masksPath, which Drain reads again when it changes.
	masks     atomic.Pointer[Masks]
	masksPath string

	mu     sync.Mutex
	f      *os.File
	end    logPos    // where the next record goes
	sealed []segFile // finished segments still on disk, oldest first
	done   bool
	broken bool          // output was lost since the last record written
	notify chan struct{} // closed and replaced at each write and at the end
}

// Create starts the log of run id in dir, capped at limit bytes on disk,
// sealing under key, the log's own key (NewKey). dir may exist, made by
// the agent before it starts the run's logger, but must hold no log yet: a
// log has one writer.
func Create(dir, id string, key *store.Keyring, limit int64, logger hclog.Logger) (*Writer, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create run log: %w", err)
	}
	f, err := createSegment(dir, 0)
	if err != nil {
		return nil, err
	}
	return &Writer{
		dir: dir, id: id, keyring: key, limit: limit, segSize: segmentSize(limit), logger: logger,
		f: f, end: logPos{at: segHeader, known: true}, notify: make(chan struct{}),
	}, nil
}

// createSegment makes a segment appear whole, magic included, so that a
// reader in another process never finds one half made, and fails when the
// segment exists: a log has one writer.
func createSegment(dir string, index uint64) (*os.File, error) {
	final := segPath(dir, index)
	tmp := final + ".new"
	os.Remove(tmp) // left by a writer that died here
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create run log segment: %w", err)
	}
	defer os.Remove(tmp)
	if _, err := f.WriteString(segMagic); err != nil {
		f.Close()
		return nil, fmt.Errorf("write run log segment: %w", err)
	}
	if err := os.Link(tmp, final); err != nil {
		f.Close()
		return nil, fmt.Errorf("create run log segment: %w", err)
	}
	return f, nil
}

// Write seals p as one or more records. It never fails the workload: output
// that cannot be written (a full disk, say) is lost, logged once, and the
// log goes on in a new segment after the gap, which readers mark as
// dropped output.
func (l *Writer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return 0, errors.New("run log is closed")
	}
	defer l.wake()
	chunk := chunkSize(l.segSize)
	for n := 0; n < len(p); {
		data := p[n:min(n+chunk, len(p))]
		if err := l.append(data); err != nil {
			// Readers see the gap as one record that is missing: one
			// number, and all the bytes lost until the log is written
			// again.
			if !l.broken {
				l.logger.Error("run output is lost: the run log cannot be written", "error", err)
				l.end.seq++
			}
			l.broken = true
			l.end.off += uint64(len(p) - n)
			break
		}
		n += len(data)
	}
	return len(p), nil
}

// append seals data as one record at the end of the log. After output was
// lost, it starts a new segment first: readers take a gap in the output
// only at a segment's start. Callers hold l.mu.
func (l *Writer) append(data []byte) error {
	if l.broken {
		if err := l.rotate(); err != nil {
			return err
		}
		l.broken = false
		l.logger.Info("run log is written again after lost output")
	}
	sealed, err := l.keyring.Seal(data, logAAD(l.id, l.end.seq, l.end.off))
	if err != nil {
		return fmt.Errorf("seal run log: %w", err)
	}
	rec := encodeRecord(l.end.seq, l.end.off, sealed)
	if l.end.at > segHeader && l.end.at+int64(len(rec)) > l.segSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	if _, err := l.f.Write(rec); err != nil {
		// Cut a partly written record off, so that records stay whole.
		l.f.Truncate(l.end.at)
		return fmt.Errorf("write run log: %w", err)
	}
	l.end.at += int64(len(rec))
	l.end.seq++
	l.end.off += uint64(len(data))
	return nil
}

// rotate finishes the current segment, starts the next one and drops the
// oldest segments past the cap. Callers hold l.mu.
func (l *Writer) rotate() error {
	f, err := createSegment(l.dir, l.end.seg+1)
	if err != nil {
		return err
	}
	l.f.Close()
	l.sealed = append(l.sealed, segFile{index: l.end.seg, size: l.end.at})
	l.f = f
	l.end.seg++
	l.end.at = segHeader
	l.trim()
	return nil
}

// trim deletes the oldest segments until the rest and a full current
// segment fit the cap. A segment that cannot be deleted stays until the
// next rotation: the workload's output is never held up for the cap.
// Callers hold l.mu.
func (l *Writer) trim() {
	var total int64
	for _, s := range l.sealed {
		total += s.size
	}
	for len(l.sealed) > 0 && total+l.segSize > l.limit {
		s := l.sealed[0]
		if err := os.Remove(segPath(l.dir, s.index)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("could not drop the oldest part of a run log", "segment", s.index, "error", err)
			return
		}
		total -= s.size
		l.sealed = l.sealed[1:]
	}
}

// wake tells followers that the log changed. Callers hold l.mu.
func (l *Writer) wake() {
	close(l.notify)
	l.notify = make(chan struct{})
}

// Close marks the log complete and closes its file.
func (l *Writer) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	close(l.notify)
	return l.f.Close()
}

// progress returns whether the log is complete, a channel closed at the
// next change, and where the records written so far end.
func (l *Writer) progress() (bool, <-chan struct{}, logPos) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.notify, l.end
}

// Resume goes on with the log of run id in dir once its writer has closed
// it, as when the run's workload is restarted: it starts a segment after
// the last one and numbers its records on from the last whole record, so
// that readers see one log. A log with no segment is created.
func Resume(dir, id string, key *store.Keyring, limit int64, logger hclog.Logger) (*Writer, error) {
	rl := &Log{dir: dir, id: id, chunks: key, limit: limit}
	segs, err := rl.segments()
	if err != nil {
		return nil, err
	}
	// A workload restarted before it wrote anything left a segment with
	// no record: it is made again, not followed by another, so that
	// restarts do not pile up empty segments.
	for len(segs) > 1 {
		last := segs[len(segs)-1]
		if fi, err := os.Stat(segPath(dir, last)); err != nil || fi.Size() > segHeader {
			break
		}
		if err := os.Remove(segPath(dir, last)); err != nil {
			return nil, fmt.Errorf("resume run log: %w", err)
		}
		segs = segs[:len(segs)-1]
	}
	if len(segs) == 0 {
		return Create(dir, id, key, limit, logger)
	}
	end, err := rl.diskEnd()
	if err != nil {
		return nil, err
	}
	// A writer that died in the middle of a record left part of it:
	// readers take only a log's last segment to end that way.
	if err := os.Truncate(segPath(dir, end.seg), end.at); err != nil {
		return nil, fmt.Errorf("resume run log: %w", err)
	}
	if !end.known {
		// The last segment holds no whole record that says where the
		// output stands: read the log through to find its end.
		if end, err = rl.scanEnd(segs[0], end); err != nil {
			return nil, err
		}
	}
	w := &Writer{
		dir: dir, id: id, keyring: key, limit: limit, segSize: segmentSize(limit), logger: logger,
		notify: make(chan struct{}),
	}
	for _, index := range segs {
		fi, err := os.Stat(segPath(dir, index))
		if err != nil {
			return nil, fmt.Errorf("resume run log: %w", err)
		}
		w.sealed = append(w.sealed, segFile{index: index, size: fi.Size()})
	}
	next := segs[len(segs)-1] + 1
	if w.f, err = createSegment(dir, next); err != nil {
		return nil, err
	}
	w.end = logPos{seg: next, at: segHeader, seq: end.seq, off: end.off, known: true}
	w.trim()
	return w, nil
}

// LastSegment returns the index of the newest segment of the log in dir,
// and false when it has none.
func LastSegment(dir string) (uint64, bool) {
	segs, err := (&Log{dir: dir}).segments()
	if err != nil || len(segs) == 0 {
		return 0, false
	}
	return segs[len(segs)-1], true
}

// NewestSegment returns the file of the newest segment of the log in dir,
// or nil when it has none. A writer that starts or resumes the log makes a
// new one, which os.SameFile tells from the one before.
func NewestSegment(dir string) os.FileInfo {
	last, ok := LastSegment(dir)
	if !ok {
		return nil
	}
	fi, err := os.Stat(segPath(dir, last))
	if err != nil {
		return nil
	}
	return fi
}
