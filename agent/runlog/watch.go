package runlog

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often a Watcher looks at a log whose directory it
// cannot watch through inotify.
const pollInterval = 250 * time.Millisecond

// Watcher is the Progress of a log written by another process, such as a
// run's logger: it reads the log's end from disk at each change that
// inotify reports in the log's directory, and the log is complete once
// ended is closed, which its owner does when the writer has exited.
type Watcher struct {
	log   *Log
	ended <-chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each change
	last    logPos        // the last end read from disk
}

// Watch starts following the log that l reads. Close the Watcher when
// done with it.
func Watch(l *Log, ended <-chan struct{}) *Watcher {
	w := &Watcher{
		log: l, ended: ended, stop: make(chan struct{}), changed: make(chan struct{}),
		last: logPos{at: segHeader, known: true},
	}
	events := make(chan struct{}, 1)
	inotify := w.inotify(events)
	w.wg.Go(func() {
		var tick <-chan time.Time
		if inotify == nil {
			t := time.NewTicker(pollInterval)
			defer t.Stop()
			tick = t.C
		} else {
			defer inotify.Close()
		}
		for {
			select {
			case <-events:
			case <-tick:
			case <-w.ended:
				w.wake()
				return
			case <-w.stop:
				return
			}
			w.wake()
		}
	})
	return w
}

// inotify starts reading inotify events for the log's directory into
// events, and returns the file to close to stop it, or nil when the
// directory cannot be watched (it does not exist yet, or the user's
// inotify instances are used up) and the Watcher must poll.
func (w *Watcher) inotify(events chan<- struct{}) *os.File {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE
	if _, err := unix.InotifyAddWatch(fd, w.log.dir, mask); err != nil {
		unix.Close(fd)
		return nil
	}
	// A non-blocking descriptor gives a file that Go's poller reads, so
	// that Close ends a Read in progress.
	f := os.NewFile(uintptr(fd), "inotify")
	w.wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case events <- struct{}{}:
			default:
			}
		}
	})
	return f
}

func (w *Watcher) wake() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

func (w *Watcher) progress() (bool, <-chan struct{}, logPos) {
	// Done is read before the end: what the writer wrote before it exited
	// is then on disk and within the end read next.
	done := false
	select {
	case <-w.ended:
		done = true
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if end, err := w.log.diskEnd(); err == nil {
		w.last = end
	}
	return done, w.changed, w.last
}

// Close stops watching.
func (w *Watcher) Close() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
	return nil
}
