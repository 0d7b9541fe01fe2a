package runlog

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LoggerCommand is the hidden hush subcommand that writes a containerd
// run's log: containerd's shim starts it as the task's binary logger
// (cio.BinaryIO), so the log is written whether or not the agent is
// running, and a workload never waits on an agent that is away.
const LoggerCommand = "_logger"

// Target says where a run's log goes, for a process other than the agent
// that writes it.
type Target struct {
	// Dir is the run's log dir, ID the run's id.
	Dir, ID string
	// Key is the path of the file that hands the writer the log's key
	// (WriteKey), which the writer removes once read.
	Key string
	// Limit caps the log's bytes on disk.
	Limit int64
	// Masks, when set, is the path of the values to mask in the log
	// (WriteMasks), which the writer reads as it starts and again when a
	// refresh replaces it.
	Masks string
	// Resume goes on with the log that an earlier writer closed, as for a
	// restarted workload, instead of starting it.
	Resume bool
}

// Encode returns t as one argument. The shim passes a binary logger's
// arguments from a map, in no fixed order, so the logger takes just one.
func (t Target) Encode() string {
	v := url.Values{
		"dir": {t.Dir}, "id": {t.ID}, "key": {t.Key}, "limit": {strconv.FormatInt(t.Limit, 10)},
	}
	if t.Masks != "" {
		v.Set("masks", t.Masks)
	}
	if t.Resume {
		v.Set("resume", "1")
	}
	return v.Encode()
}

// ParseTarget reads what Encode wrote.
func ParseTarget(s string) (Target, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return Target{}, fmt.Errorf("parse log target: %w", err)
	}
	t := Target{Dir: v.Get("dir"), ID: v.Get("id"), Key: v.Get("key"), Masks: v.Get("masks"), Resume: v.Get("resume") == "1"}
	t.Limit, err = strconv.ParseInt(v.Get("limit"), 10, 64)
	if err != nil || t.Limit <= 0 || t.Dir == "" || t.ID == "" || t.Key == "" {
		return Target{}, fmt.Errorf("log target %q: want dir, id, key and a positive limit", s)
	}
	return t, nil
}

// Create starts the log that t names.
func (t Target) Create(logger hclog.Logger) (*Writer, error) {
	key, err := takeKey(t.Key)
	if err != nil {
		return nil, err
	}
	var masks *Masks
	if t.Masks != "" {
		if masks, err = readMasks(t.Masks); err != nil {
			return nil, err
		}
	}
	start := Create
	if t.Resume {
		start = Resume
	}
	w, err := start(t.Dir, t.ID, key, t.Limit, logger)
	if err != nil {
		return nil, err
	}
	if masks != nil {
		w.masks.Store(masks)
		w.masksPath = t.Masks
	}
	return w, nil
}

// The files containerd's shim gives its binary logger: the task's stdout
// and stderr, and a pipe to close once ready.
const (
	loggerStdout = 3
	loggerStderr = 4
	loggerReady  = 5
)

// LoggerMain runs the logger with the arguments that follow
// LoggerCommand, and returns its exit code. It writes what it reads from
// the task's stdout and stderr until both end, which is when the shim
// deletes the task: the shim's SIGTERM then only says that the end is
// near, and the logger reads on to it.
func LoggerMain(args []string, stderr io.Writer) int {
	logger := hclog.New(&hclog.LoggerOptions{Name: "hush-logger", Output: stderr, JSONFormat: true})
	if len(args) != 1 {
		logger.Error("usage: hush " + LoggerCommand + " TARGET")
		return 2
	}
	target, err := ParseTarget(args[0])
	if err != nil {
		logger.Error("cannot start the run's logger", "error", err)
		return 2
	}
	signal.Ignore(syscall.SIGTERM)
	w, err := target.Create(logger.With("run_id", target.ID))
	if err != nil {
		// Without a logger the shim cannot start the task: the run fails
		// with this message in its error.
		logger.Error("cannot start the run's logger", "run_id", target.ID, "error", err)
		return 1
	}
	ready := os.NewFile(loggerReady, "ready")
	ready.Write([]byte{1})
	ready.Close()
	if err := Drain(w, os.NewFile(loggerStdout, "stdout"), os.NewFile(loggerStderr, "stderr")); err != nil {
		logger.Error("run output could not be read", "run_id", target.ID, "error", err)
		return 1
	}
	return 0
}

// MasksPoll is how often a log's writer looks for new values to mask,
// which a refresh of the run's secrets adds: the agent waits twice that
// before the run may see them.
const MasksPoll = 100 * time.Millisecond

// watchMasks reads the values to mask again whenever their file is
// replaced, until done is closed.
func (w *Writer) watchMasks(done <-chan struct{}) {
	last, _ := os.Stat(w.masksPath)
	tick := time.NewTicker(MasksPoll)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		fi, err := os.Stat(w.masksPath)
		if err != nil || last != nil && os.SameFile(fi, last) && fi.ModTime().Equal(last.ModTime()) && fi.Size() == last.Size() {
			continue
		}
		masks, err := readMasks(w.masksPath)
		if err != nil {
			w.logger.Warn("could not read the run's new values to mask", "error", err)
			continue
		}
		w.masks.Store(masks)
		last = fi
	}
}

// Drain writes what each reader gives to w until every one ends, then
// closes w. Each reader is a stream of its own, masked on its own when w
// masks values, so that a value split across two writes of one stream is
// masked whatever the other streams write in between.
func Drain(w *Writer, readers ...io.Reader) error {
	if w.masksPath != "" {
		done := make(chan struct{})
		defer close(done)
		go w.watchMasks(done)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(readers))
	for i, r := range readers {
		wg.Go(func() {
			var dst io.Writer = w
			if w.masks.Load() != nil {
				f := &maskFilter{m: w.masks.Load, w: w}
				defer f.Close()
				dst = f
			}
			if _, err := io.Copy(dst, r); err != nil && !errors.Is(err, os.ErrClosed) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, w.Close())...)
}
