package runlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/userfile"
)

func testKeyring(t *testing.T) *store.Keyring {
	t.Helper()
	kr, err := store.LoadKeyring(filepath.Join(t.TempDir(), "keyring"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// testLogs numbers the test logs, so that each has its own run id.
var testLogs atomic.Int64

// newTestLog creates a log capped at limit and a reader of it.
func newTestLog(t *testing.T, kr *store.Keyring, limit int64) (*Writer, *Log) {
	t.Helper()
	id := fmt.Sprintf("01RUN%d", testLogs.Add(1))
	dir := filepath.Join(t.TempDir(), id)
	raw, err := NewKey(dir, id, kr)
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.KeyringOf(raw)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(dir, id, key, limit, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, &Log{dir: dir, id: id, keyring: kr, limit: limit}
}

func writeAll(t *testing.T, w *Writer, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("write %d bytes: got %d, %v", len(p), n, err)
		}
	}
}

// read returns what copy writes for the given tail, without following.
func read(t *testing.T, rl *Log, live Progress, tail int) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := rl.Copy(context.Background(), live, false, tail, &out, func() {})
	return out.String(), err
}

func dirSize(t *testing.T, dir string) (total int64, files int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		files++
	}
	return total, files
}

func numberedLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %06d\n", i)
	}
	return b.String()
}

var markerRe = regexp.MustCompile(`^\[hush: ([0-9.]+ (?:bytes|KiB|MiB|GiB)) of earlier output dropped: this run's log is capped at 64 KiB\]\n`)

func TestLogCapDropsOldestSegments(t *testing.T) {
	const limit = 64 << 10
	w, rl := newTestLog(t, testKeyring(t), limit)
	text := numberedLines(0, 40000) // 480 KB, several times the cap
	for i := 0; i < len(text); i += 1000 {
		writeAll(t, w, text[i:min(i+1000, len(text))])
		if size, _ := dirSize(t, rl.dir); size > limit+segmentSize(limit) {
			t.Fatalf("after %d bytes the log holds %d bytes on disk, over the cap of %d plus a segment", i, size, limit)
		}
	}
	size, files := dirSize(t, rl.dir)
	if size > limit || files < 2 {
		t.Errorf("got %d bytes in %d segments, want at most %d bytes in several", size, files, limit)
	}

	for _, live := range []Progress{w, nil} {
		if live == nil {
			w.Close()
		}
		all, err := read(t, rl, live, -1)
		if err != nil {
			t.Fatal(err)
		}
		m := markerRe.FindStringSubmatch(all)
		if m == nil {
			t.Fatalf("the log does not start with a marker line: %.200q", all)
		}
		kept := all[len(m[0]):]
		if !strings.HasSuffix(text, kept) || len(kept) < limit/2 {
			t.Fatalf("after the marker got %d bytes, want a suffix of the output of at least %d bytes", len(kept), limit/2)
		}
		if want := userfile.FormatSize(int64(len(text) - len(kept))); m[1] != want {
			t.Errorf("marker says %s dropped, want %s", m[1], want)
		}
		if got, err := read(t, rl, live, 2); err != nil || got != numberedLines(39998, 40000) {
			t.Errorf("tail 2: got %q, %v", got, err)
		}
		if got, err := read(t, rl, live, 1e6); err != nil || got != all {
			t.Errorf("tail past the start: got %d bytes (%v), want the marker and all %d bytes kept", len(got), err, len(kept))
		}
	}
	if hits := grep(t, rl.dir, "line 0399"); len(hits) > 0 {
		t.Errorf("output in plaintext in %v", hits)
	}
}

func TestTailReadsBackwards(t *testing.T) {
	long := strings.Repeat("x", 50<<10) // a line across many records and segments
	tests := map[string]struct {
		limit  int64
		writes []string
	}{
		"lines across records":    {64 << 20, []string{"ab", "c\nde", "f\n", "g"}},
		"trailing newline":        {64 << 20, []string{"a\n", "b\n", "\n", "c\n"}},
		"one record":              {64 << 20, []string{"one\ntwo\nthree\n"}},
		"only newlines":           {64 << 20, []string{"\n\n", "\n"}},
		"empty":                   {64 << 20, nil},
		"lines across segments":   {1 << 20, []string{"start\n", long, "\nmiddle\n", long + "\n", "end"}},
		"many small records":      {1 << 20, strings.SplitAfter(numberedLines(0, 3000), "\n")},
		"records split in chunks": {64 << 10, []string{numberedLines(0, 400)}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			w, rl := newTestLog(t, testKeyring(t), tt.limit)
			writeAll(t, w, tt.writes...)
			text := []byte(strings.Join(tt.writes, ""))
			lines := bytes.Count(text, []byte("\n")) + 1
			for _, n := range []int{0, 1, 2, 3, lines - 1, lines, lines + 5} {
				if n < 0 {
					continue
				}
				got, err := read(t, rl, w, n)
				if want := string(lastLines(text, n)); err != nil || got != want {
					t.Errorf("tail %d: got %.80q (%v), want %.80q", n, got, err, want)
				}
			}
		})
	}
}

// TestTailMemoryIsBounded checks that a tail reads from the end: what it
// allocates does not grow with the log.
func TestTailMemoryIsBounded(t *testing.T) {
	w, rl := newTestLog(t, testKeyring(t), 1<<40)
	line := strings.Repeat("y", 99) + "\n"
	chunk := strings.Repeat(line, 320) // 32 KB, as a pipe delivers output
	for range 1024 {                   // 32 MB
		writeAll(t, w, chunk)
	}
	w.Close()
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	got, err := read(t, rl, nil, 1)
	goruntime.ReadMemStats(&after)
	if err != nil || got != line {
		t.Fatalf("tail 1: got %q, %v", got, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("tail 1 of a 32 MB log allocated %d bytes, want under 1 MiB", alloc)
	}
}

// TestTailOfLongLinesStreams: the last line of a log may be all of it (a
// progress bar that writes \r, say); tail streams it record by record
// instead of holding it.
func TestTailOfLongLinesStreams(t *testing.T) {
	w, rl := newTestLog(t, testKeyring(t), 1<<40)
	chunk := strings.Repeat("progress\r", 3641) // 32 KB
	for range 1024 {                            // 32 MB, and one line
		writeAll(t, w, chunk)
	}
	writeAll(t, w, "done\n")
	w.Close()
	out := &heapWatcher{}
	goruntime.GC()
	if err := rl.Copy(context.Background(), nil, false, 1, out, func() {}); err != nil {
		t.Fatal(err)
	}
	if want := int64(1024*len(chunk) + len("done\n")); out.n != want {
		t.Fatalf("tail 1 wrote %d bytes, want the whole line of %d", out.n, want)
	}
	if out.peak > 16<<20 {
		t.Errorf("the heap reached %d bytes while tail 1 wrote a 32 MB line, want it streamed in well under 16 MiB", out.peak)
	}
}

// heapWatcher counts what is written to it and the largest heap seen at
// a write.
type heapWatcher struct {
	n, peak int64
}

func (h *heapWatcher) Write(p []byte) (int, error) {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	h.peak = max(h.peak, int64(ms.HeapAlloc))
	h.n += int64(len(p))
	return len(p), nil
}

func TestLogTamperingIsDetected(t *testing.T) {
	// Records of 100 bytes of output each, 14 per 2 KiB chunk... keep them
	// one per write so that records have equal lengths and can be swapped.
	const recLen = recHead + 5 + 12 + 100 + 16 + recTail
	kr := testKeyring(t)
	tests := map[string]func(t *testing.T, dir string){
		"flipped byte": func(t *testing.T, dir string) {
			patch(t, segPath(dir, 0), func(b []byte) { b[segHeader+recHead+40] ^= 1 })
		},
		"records swapped": func(t *testing.T, dir string) {
			patch(t, segPath(dir, 0), func(b []byte) {
				a, c := b[segHeader:segHeader+recLen], b[segHeader+recLen:segHeader+2*recLen]
				tmp := bytes.Clone(a)
				copy(a, c)
				copy(c, tmp)
			})
		},
		"record dropped from the middle": func(t *testing.T, dir string) {
			patch(t, segPath(dir, 0), func(b []byte) {
				copy(b[segHeader+recLen:], b[segHeader+2*recLen:])
			})
			trim(t, segPath(dir, 0), recLen)
		},
		"segments swapped": func(t *testing.T, dir string) {
			rename(t, segPath(dir, 1), filepath.Join(dir, "tmp"))
			rename(t, segPath(dir, 2), segPath(dir, 1))
			rename(t, filepath.Join(dir, "tmp"), segPath(dir, 2))
		},
		"record from another run": func(t *testing.T, dir string) {
			other, _ := newTestLog(t, kr, 64<<10)
			writeAll(t, other, strings.Repeat("o", 100))
			src, err := os.ReadFile(segPath(other.dir, 0))
			if err != nil {
				t.Fatal(err)
			}
			patch(t, segPath(dir, 0), func(b []byte) { copy(b[segHeader:segHeader+recLen], src[segHeader:]) })
		},
		"length changed": func(t *testing.T, dir string) {
			patch(t, segPath(dir, 0), func(b []byte) { b[segHeader+recLen-1]++ })
		},
	}
	for name, tamper := range tests {
		t.Run(name, func(t *testing.T) {
			w, rl := newTestLog(t, kr, 64<<10)
			for i := range 300 {
				writeAll(t, w, fmt.Sprintf("%099d\n", i))
			}
			w.Close()
			if _, files := dirSize(t, rl.dir); files < 3 {
				t.Fatalf("got %d segments, want at least 3", files)
			}
			tamper(t, rl.dir)
			if _, err := read(t, rl, nil, -1); !errors.Is(err, errLogCorrupt) {
				t.Errorf("reading all: got %v, want it reported corrupt", err)
			}
			if _, err := read(t, rl, nil, 1000); !errors.Is(err, errLogCorrupt) {
				t.Errorf("tail: got %v, want it reported corrupt", err)
			}
		})
	}
}

func patch(t *testing.T, path string, fn func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func trim(t *testing.T, path string, n int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-n); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// TestFollowDuringRotation follows a log while its writer rotates and
// drops segments: the follower sees whole lines in order, with a marker
// wherever it fell behind the cap, and follow after tail goes on exactly
// where the tail ended.
func TestFollowDuringRotation(t *testing.T) {
	w, rl := newTestLog(t, testKeyring(t), 64<<10)
	writeAll(t, w, numberedLines(0, 10))
	type result struct {
		out string
		err error
	}
	follow := func(tail int) chan result {
		ch := make(chan result, 1)
		go func() {
			var out bytes.Buffer
			err := rl.Copy(context.Background(), w, true, tail, &out, func() {})
			ch <- result{out.String(), err}
		}()
		return ch
	}
	fromStart, fromTail := follow(-1), follow(2)
	time.Sleep(50 * time.Millisecond) // let both readers start
	const total = 30000
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 10; i < total; i += 50 {
			writeAll(t, w, numberedLines(i, min(i+50, total)))
		}
		w.Close()
	})
	wg.Wait()

	for name, ch := range map[string]chan result{"from start": fromStart, "after tail 2": fromTail} {
		var r result
		select {
		case r = <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the follower did not end with the run", name)
		}
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		next := 0
		if name == "after tail 2" {
			next = 8
		}
		for line := range strings.Lines(r.out) {
			if strings.HasPrefix(line, "[hush: ") {
				next = -1 // a gap: any later line may follow
				continue
			}
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, "line "), "\n"))
			if err != nil || (next >= 0 && n != next) || !strings.HasSuffix(line, "\n") {
				t.Fatalf("%s: got line %q, want line %06d", name, line, next)
			}
			next = n + 1
		}
		if next != total {
			t.Errorf("%s: the output ends before line %06d", name, next)
		}
	}
}

// TestFollowerFallsBehind follows a log with a reader that stalls while
// the writer drops the segments it has not read yet: the reader says how
// much it missed and goes on with what is left.
func TestFollowerFallsBehind(t *testing.T) {
	w, rl := newTestLog(t, testKeyring(t), 64<<10)
	// Three segments, so that the end the reader starts with is past the
	// segment it stalls in; the writer drops both before it goes on.
	writeAll(t, w, numberedLines(0, 2000))
	stalled, resume := make(chan struct{}), make(chan struct{})
	out := &stallWriter{stalled: stalled, resume: resume}
	done := make(chan error, 1)
	go func() { done <- rl.Copy(context.Background(), w, true, -1, out, func() {}) }()
	<-stalled
	const total = 40000 // several times the cap
	writeAll(t, w, numberedLines(2000, total))
	w.Close()
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.buf.String()
	marker := regexp.MustCompile(`\n\[hush: ([0-9.]+ KiB) of output dropped here: this run's log is capped at 64 KiB, or the agent could not write it\]\n`)
	m := marker.FindStringSubmatchIndex(got)
	if m == nil {
		t.Fatalf("no marker where the reader fell behind in %.300q", got)
	}
	before, after := got[:m[0]+1], got[m[1]:]
	text := numberedLines(0, total)
	if !strings.HasPrefix(text, before) || !strings.HasSuffix(text, after) {
		t.Fatalf("got %d bytes before the marker and %d after, want the start and the end of the output", len(before), len(after))
	}
	if want := userfile.FormatSize(int64(len(text) - len(before) - len(after))); got[m[2]:m[3]] != want {
		t.Errorf("the marker says %s dropped, want %s", got[m[2]:m[3]], want)
	}
}

// TestLostOutputNeverFailsTheWorkload: when the log cannot be written, the
// workload's writes still succeed, and readers are told output was lost
// where it was.
func TestLostOutputNeverFailsTheWorkload(t *testing.T) {
	w, rl := newTestLog(t, testKeyring(t), 1<<20)
	writeAll(t, w, "before\n")
	w.f.Close() // as a full disk would, the next write fails
	writeAll(t, w, "lost line\n")
	writeAll(t, w, "after\n")
	w.Close()
	got, err := read(t, rl, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := "before\n[hush: 10 bytes of output dropped here: this run's log is capped at 1 MiB, or the agent could not write it]\nafter\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := read(t, rl, nil, 2); err != nil || got != want[len("before\n"):] {
		t.Errorf("tail 2: got %q, %v; want the marker and after", got, err)
	}
}

// stallWriter stalls at its first write until resume is closed.
type stallWriter struct {
	buf             bytes.Buffer
	stalled, resume chan struct{}
	once            sync.Once
}

func (s *stallWriter) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.stalled); <-s.resume })
	return s.buf.Write(p)
}

// TestLegacyTail checks that a tail of a hush 0.1 log, which can only be
// read forwards, keeps the right lines while it drops the others.
func TestLegacyTail(t *testing.T) {
	kr := testKeyring(t)
	path := filepath.Join(t.TempDir(), "01OLD.log")
	text := numberedLines(0, 50000)
	var file []byte
	for seq, off := uint64(0), 0; off < len(text); seq, off = seq+1, off+777 {
		sealed, err := kr.Seal([]byte(text[off:min(off+777, len(text))]), legacyAAD("01OLD", seq))
		if err != nil {
			t.Fatal(err)
		}
		file = append(binary.BigEndian.AppendUint32(file, uint32(len(sealed))), sealed...)
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 3, 10000, 60000} {
		lr, err := OpenLegacy(path, "01OLD", kr)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = CopyLegacy(lr, n, &out)
		lr.Close()
		if want := lastLines([]byte(text), n); err != nil || !bytes.Equal(out.Bytes(), want) {
			t.Errorf("tail %d: got %d bytes (%v), want %d", n, out.Len(), err, len(want))
		}
	}
}

// grep returns the files under dir that hold needle.
func grep(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(needle)) {
				hits = append(hits, p)
			}
		}
		return nil
	})
	return hits
}
