package runlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hush-sh/hush/agent/store"

	"github.com/hush-sh/hush/sdk/userfile"
)

// errLogCorrupt marks a run log that was altered or damaged.
var errLogCorrupt = errors.New("run log is corrupt")

// Log reads a run's segmented log.
type Log struct {
	dir, id string
	keyring *store.Keyring
	// limit is the run's cap, which the dropped-output marker names.
	limit int64

	mu sync.Mutex
	// chunks opens the log's chunks: its own key, or, for a log from
	// before log keys, the keyring. Nil until a segment is opened.
	chunks *store.Keyring
}

// NewLog returns the reader of run id's log in dir, sealed under the
// agent's keyring kr and capped at limit bytes.
func NewLog(dir, id string, kr *store.Keyring, limit int64) *Log {
	return &Log{dir: dir, id: id, keyring: kr, limit: limit}
}

// Progress tells a follower how far a log's writer has got: a *Writer in
// the same process, or Watch for a writer in another.
type Progress interface {
	// progress returns whether the log is complete, a channel closed at
	// the next change, and where the records written so far end.
	progress() (done bool, changed <-chan struct{}, end logPos)
}

// record is one chunk of output and where it sits in the run's output.
type record struct {
	seq, off uint64
	data     []byte
}

func (r record) end() uint64 { return r.off + uint64(len(r.data)) }

func (rl *Log) corrupt(seg uint64, at int64, format string, args ...any) error {
	return fmt.Errorf("%w: segment %d, byte %d: %s", errLogCorrupt, seg, at, fmt.Sprintf(format, args...))
}

// segments lists the indexes of the segments on disk, in order.
func (rl *Log) segments() ([]uint64, error) {
	entries, err := os.ReadDir(rl.dir)
	if err != nil {
		return nil, fmt.Errorf("read run log: %w", err)
	}
	var out []uint64
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".seg"); ok {
			if n, err := strconv.ParseUint(name, 10, 64); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// openSegment opens a segment; an error wraps os.ErrNotExist when the cap
// dropped it.
func (rl *Log) openSegment(index uint64) (*os.File, error) {
	f, err := os.Open(segPath(rl.dir, index))
	if err != nil {
		return nil, fmt.Errorf("open run log: %w", err)
	}
	magic := make([]byte, segHeader)
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != segMagic && string(magic) != segMagicV2 {
		f.Close()
		return nil, rl.corrupt(index, 0, "not a run log segment")
	}
	if err := rl.openChunks(string(magic)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openChunks readies what opens the log's chunks, which the magic of its
// segments tells.
func (rl *Log) openChunks(magic string) error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	switch {
	case rl.chunks != nil:
		return nil
	case magic == segMagicV2:
		rl.chunks = rl.keyring
		return nil
	}
	key, err := openKey(rl.dir, rl.id, rl.keyring)
	if err != nil {
		return err
	}
	rl.chunks = key
	return nil
}

// openFrom opens the first segment on disk from index on, up to last.
func (rl *Log) openFrom(index, last uint64) (*os.File, uint64, error) {
	for {
		f, err := rl.openSegment(index)
		if !errors.Is(err, os.ErrNotExist) {
			return f, index, err
		}
		// The cap dropped it, and so every segment before it.
		segs, err := rl.segments()
		if err != nil {
			return nil, 0, err
		}
		i := slices.IndexFunc(segs, func(s uint64) bool { return s > index && s <= last })
		if i < 0 {
			return nil, 0, fmt.Errorf("open run log: segment %d and those after it up to %d are gone: %w", index, last, os.ErrNotExist)
		}
		index = segs[i]
	}
}

// decode opens the record whose head and sealed chunk are given.
func (rl *Log) decode(seg uint64, at int64, head, sealed []byte) (record, error) {
	r := record{seq: binary.BigEndian.Uint64(head[4:12]), off: binary.BigEndian.Uint64(head[12:20])}
	rl.mu.Lock()
	chunks := rl.chunks
	rl.mu.Unlock()
	data, err := chunks.Open(sealed, logAAD(rl.id, r.seq, r.off))
	if err != nil {
		return record{}, rl.corrupt(seg, at, "record %d: %v", r.seq, err)
	}
	r.data = data
	return r, nil
}

// readAt reads the record that starts at byte at, and returns it and where
// the next one starts.
func (rl *Log) readAt(f *os.File, seg uint64, at int64) (record, int64, error) {
	head := make([]byte, recHead)
	if _, err := f.ReadAt(head, at); err != nil {
		return record{}, 0, rl.corrupt(seg, at, "truncated record: %v", err)
	}
	n := binary.BigEndian.Uint32(head)
	if n > maxRecord {
		return record{}, 0, rl.corrupt(seg, at, "record length %d is too large", n)
	}
	rest := make([]byte, int(n)+recTail)
	if _, err := f.ReadAt(rest, at+recHead); err != nil {
		return record{}, 0, rl.corrupt(seg, at, "truncated record: %v", err)
	}
	if binary.BigEndian.Uint32(rest[n:]) != n {
		return record{}, 0, rl.corrupt(seg, at, "record lengths differ")
	}
	r, err := rl.decode(seg, at, head, rest[:n])
	return r, at + recHead + int64(n) + recTail, err
}

// readBefore reads the record that ends at byte end, and returns it and
// where it starts.
func (rl *Log) readBefore(f *os.File, seg uint64, end int64) (record, int64, error) {
	if end-recTail < segHeader {
		return record{}, 0, rl.corrupt(seg, end, "no record ends here")
	}
	var tail [recTail]byte
	if _, err := f.ReadAt(tail[:], end-recTail); err != nil {
		return record{}, 0, rl.corrupt(seg, end, "truncated record: %v", err)
	}
	n := binary.BigEndian.Uint32(tail[:])
	start := end - recTail - int64(n) - recHead
	if n > maxRecord || start < segHeader {
		return record{}, 0, rl.corrupt(seg, end, "record length %d does not fit", n)
	}
	buf := make([]byte, recHead+int(n))
	if _, err := f.ReadAt(buf, start); err != nil {
		return record{}, 0, rl.corrupt(seg, start, "truncated record: %v", err)
	}
	if binary.BigEndian.Uint32(buf) != n {
		return record{}, 0, rl.corrupt(seg, start, "record lengths differ")
	}
	r, err := rl.decode(seg, start, buf[:recHead], buf[recHead:])
	return r, start, err
}

// diskEnd returns where the records of a log end on disk: the end of the
// last whole record of its last segment. A writer may be writing the next
// record, or have died while it wrote one, and left part of it after.
func (rl *Log) diskEnd() (logPos, error) {
	segs, err := rl.segments()
	if err != nil {
		return logPos{}, err
	}
	if len(segs) == 0 {
		// The run ended before its logger started: its log is empty.
		return logPos{at: segHeader, known: true}, nil
	}
	last := segs[len(segs)-1]
	f, err := rl.openSegment(last)
	if err != nil {
		return logPos{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return logPos{}, fmt.Errorf("open run log: %w", err)
	}
	end := fi.Size()
	if end == segHeader {
		return logPos{seg: last, at: end}, nil
	}
	if r, _, err := rl.readBefore(f, last, end); err == nil {
		return logPos{seg: last, at: end, seq: r.seq + 1, off: r.end(), known: true}, nil
	}
	// Find the last whole record by walking the lengths from the start.
	at, head := segHeader, make([]byte, recHead)
	for {
		if _, err := f.ReadAt(head, at); err != nil {
			break
		}
		next := at + recHead + int64(binary.BigEndian.Uint32(head)) + recTail
		if next > end {
			break
		}
		at = next
	}
	return logPos{seg: last, at: at}, nil
}

// forward reads records in order from a place in the log, moving on to
// later segments as it reaches the end of one.
type forward struct {
	rl   *Log
	f    *os.File // nil until the segment at pos is opened
	size int64    // the segment's length once it is finished, else -1
	pos  logPos
}

// forwardFrom starts reading at pos, or, when the cap has dropped pos's
// segment, at the oldest segment left.
func (rl *Log) forwardFrom(pos logPos) *forward {
	return &forward{rl: rl, size: -1, pos: pos}
}

func (fw *forward) Close() error {
	if fw.f == nil {
		return nil
	}
	return fw.f.Close()
}

// open opens the segment at fw.pos, or the first one after it left on
// disk up to last.
func (fw *forward) open(last uint64) error {
	f, seg, err := fw.rl.openFrom(fw.pos.seg, last)
	if err != nil {
		return err
	}
	fw.Close()
	if seg != fw.pos.seg {
		fw.pos.seg, fw.pos.at = seg, segHeader
	}
	fw.f, fw.size = f, -1
	return nil
}

// next returns the next record before end, or io.EOF when there is none.
// dropped is how much output the cap dropped just before the record.
func (fw *forward) next(end logPos) (r record, dropped uint64, err error) {
	for {
		if fw.f == nil {
			if err := fw.open(end.seg); errors.Is(err, os.ErrNotExist) {
				// The writer has dropped every segment up to the end it
				// reported; a later end shows where to go on.
				return record{}, 0, io.EOF
			} else if err != nil {
				return record{}, 0, err
			}
		}
		limit := fw.size
		if fw.pos.seg == end.seg {
			limit = end.at
		} else if fw.size < 0 {
			// The writer has moved on: this segment is finished.
			fi, err := fw.f.Stat()
			if err != nil {
				return record{}, 0, fmt.Errorf("read run log: %w", err)
			}
			fw.size, limit = fi.Size(), fi.Size()
		}
		if fw.pos.at < limit {
			r, next, err := fw.rl.readAt(fw.f, fw.pos.seg, fw.pos.at)
			if err != nil {
				return record{}, 0, err
			}
			switch p := fw.pos; {
			case !p.known || (r.seq == p.seq && r.off == p.off):
			case p.at == segHeader && r.seq > p.seq && r.off > p.off:
				// A segment's first record may follow a gap the cap made.
				dropped = r.off - p.off
			default:
				return record{}, 0, fw.rl.corrupt(p.seg, p.at, "record %d at output byte %d is out of order: want record %d at byte %d", r.seq, r.off, p.seq, p.off)
			}
			fw.pos = logPos{seg: fw.pos.seg, at: next, seq: r.seq + 1, off: r.end(), known: true}
			return r, dropped, nil
		}
		if fw.pos.seg >= end.seg {
			return record{}, 0, io.EOF
		}
		fw.Close()
		fw.f = nil
		fw.pos.seg, fw.pos.at = fw.pos.seg+1, segHeader
	}
}

// tailResult is where the last lines of a log begin: at the record at
// from, skip bytes into it. The caller streams them from there, so that a
// tail holds one record at a time, however long its lines.
type tailResult struct {
	from logPos
	skip int
	// atStart is set when the lines reach back to the oldest output on
	// disk, and dropped is then how much older output the cap dropped.
	atStart bool
	dropped uint64
	// gap, when not 0, is how much output is missing just before the
	// lines: output the agent could not write.
	gap uint64
}

// tail finds where the last n lines before end begin, walking back from
// end, so that it reads no more than those lines.
func (rl *Log) tail(end logPos, n int) (tailResult, error) {
	res := tailResult{from: end}
	if n <= 0 {
		return res, nil
	}
	if end.seg == 0 && end.at == segHeader {
		// Nothing written yet, maybe not even the first segment.
		res.atStart = true
		return res, nil
	}
	f, err := rl.openSegment(end.seg)
	if err != nil {
		return res, err
	}
	defer func() { f.Close() }()
	seg, at := end.seg, end.at
	later := end // the record after the one being read
	lines := lineCounter{want: n}
	crossed := false // whether the record being read ends a segment
	for {
		if at == segHeader {
			if seg == 0 {
				res.atStart = true
				return res, nil
			}
			prev, err := rl.openSegment(seg - 1)
			if errors.Is(err, os.ErrNotExist) {
				res.atStart = true
				if later.known {
					res.dropped = later.off
				}
				return res, nil
			}
			if err != nil {
				return res, err
			}
			fi, err := prev.Stat()
			if err != nil {
				prev.Close()
				return res, fmt.Errorf("read run log: %w", err)
			}
			f.Close()
			f, seg, at = prev, seg-1, fi.Size()
			crossed = true
			continue
		}
		r, start, err := rl.readBefore(f, seg, at)
		if err != nil {
			return res, err
		}
		switch {
		case !later.known || (r.seq+1 == later.seq && r.end() == later.off):
		case crossed && r.seq+2 == later.seq && r.end() < later.off:
			// A segment may start after output the writer lost, which
			// took one record number.
			res.gap = later.off - r.end()
			return res, nil
		default:
			return res, rl.corrupt(seg, start, "record %d at output byte %d is out of order: want record %d ending at byte %d", r.seq, r.off, later.seq-1, later.off)
		}
		crossed = false
		later = logPos{seg: seg, at: start, seq: r.seq, off: r.off, known: true}
		res.from = later
		if i, ok := lines.feed(r.data); ok {
			res.skip = i
			return res, nil
		}
		at = start
	}
}

// lineCounter finds where the last want lines of a text begin, given its
// chunks from the last to the first.
type lineCounter struct {
	want, seen int
	started    bool
}

// feed takes the next chunk back and reports where in it the lines begin,
// once they do.
func (c *lineCounter) feed(b []byte) (int, bool) {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != '\n' || !c.started {
			// The text's final newline ends its last line; it does not
			// start one.
			c.started = true
			continue
		}
		c.seen++
		if c.seen == c.want {
			return i + 1, true
		}
	}
	return 0, false
}

// markWriter writes output and the marker lines about dropped output, each
// on a line of its own.
type markWriter struct {
	w     io.Writer
	limit int64
	last  byte // the last byte written, 0 before any
}

func (mw *markWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		mw.last = p[len(p)-1]
	}
	return mw.w.Write(p)
}

// dropped writes the marker for n bytes of output the cap dropped; first
// says that nothing of the run's output came before them.
func (mw *markWriter) dropped(n uint64, first bool) error {
	what := "of earlier output dropped"
	if !first {
		what = "of output dropped here"
	}
	why := "this run's log is capped"
	if mw.limit > 0 {
		why += " at " + userfile.FormatSize(mw.limit)
	}
	if !first {
		// A gap within the log may also be output the agent could not
		// write, as on a full disk.
		why += ", or the agent could not write it"
	}
	msg := fmt.Sprintf("[hush: %s %s: %s]\n", userfile.FormatSize(int64(n)), what, why)
	if mw.last != 0 && mw.last != '\n' {
		msg = "\n" + msg
	}
	_, err := mw.Write([]byte(msg))
	return err
}

// copy writes the log to w: its last tail lines (all of it when tail is
// negative), then, when follow is set and live is not nil, what the run
// writes until it ends or ctx is done, going on exactly where the tail
// ended. flush is called after each batch.
func (rl *Log) Copy(ctx context.Context, live Progress, follow bool, tail int, w io.Writer, flush func()) error {
	done, changed, end := true, (<-chan struct{})(nil), logPos{}
	if live != nil {
		done, changed, end = live.progress()
	} else {
		var err error
		if end, err = rl.diskEnd(); err != nil {
			return err
		}
	}
	out := &markWriter{w: w, limit: rl.limit}
	fw := rl.forwardFrom(logPos{at: segHeader, known: true})
	skip := 0 // bytes of the first record read that the tail leaves out
	if tail >= 0 {
		res, err := rl.tail(end, tail)
		for attempt := 0; errors.Is(err, os.ErrNotExist) && live != nil && attempt < 10; attempt++ {
			// The writer dropped the segment at the end it reported before
			// it could be read: ask again.
			done, changed, end = live.progress()
			res, err = rl.tail(end, tail)
		}
		if err != nil {
			return err
		}
		if res.atStart && res.dropped > 0 {
			if err := out.dropped(res.dropped, true); err != nil {
				return err
			}
		}
		if res.gap > 0 {
			if err := out.dropped(res.gap, false); err != nil {
				return err
			}
		}
		fw, skip = rl.forwardFrom(res.from), res.skip
	}
	defer fw.Close()
	drain := func() error {
		for {
			r, dropped, err := fw.next(end)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if dropped > 0 {
				if err := out.dropped(dropped, r.off == dropped); err != nil {
					return err
				}
			}
			data := r.data[min(skip, len(r.data)):]
			skip = 0
			if _, err := out.Write(data); err != nil {
				return err
			}
		}
	}
	if err := drain(); err != nil {
		return err
	}
	flush()
	for follow && !done {
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
		done, changed, end = live.progress()
		if err := drain(); err != nil {
			return err
		}
		flush()
	}
	return nil
}

// scanEnd reads the log from segment first up to end and returns where its
// records end, with the seq and offset of the record that comes next.
func (rl *Log) scanEnd(first uint64, end logPos) (logPos, error) {
	fw := rl.forwardFrom(logPos{seg: first, at: segHeader})
	defer fw.Close()
	out := logPos{known: true}
	for {
		r, _, err := fw.next(end)
		if errors.Is(err, io.EOF) {
			return logPos{seg: end.seg, at: end.at, seq: out.seq, off: out.off, known: true}, nil
		}
		if err != nil {
			return logPos{}, err
		}
		out.seq, out.off = r.seq+1, r.end()
	}
}
