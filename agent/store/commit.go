package store

import (
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned for a write to a closed store.
var ErrClosed = errors.New("store is closed")

// maxGroup bounds how many writes share one transaction.
const maxGroup = 512

// committer runs the store's writes, grouping those that arrive together
// into one bbolt transaction and so one fsync: a write that finds no
// commit under way is committed at once, and the writes that arrive while
// a commit is under way share the next one. Each write is answered only
// once the transaction that holds it is durable.
type committer struct {
	db      *bolt.DB
	queue   chan *pendingWrite
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
	// observe, when set, is told how long each commit took and how many
	// writes it held.
	observe func(d time.Duration, writes int)
}

type pendingWrite struct {
	fn  func(*bolt.Tx) error
	err chan error
}

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, queue: make(chan *pendingWrite), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// write runs fn in a write transaction and returns once that transaction
// is committed, or fn's error. fn may run more than once, as in bbolt's
// Batch: its effects outside tx must be idempotent.
func (c *committer) write(fn func(*bolt.Tx) error) error {
	w := &pendingWrite{fn: fn, err: make(chan error, 1)}
	select {
	case c.queue <- w:
	case <-c.done:
		return ErrClosed
	}
	return <-w.err
}

// close stops the committer once the writes under way are answered.
func (c *committer) close() {
	c.stopped.Do(func() { close(c.stop) })
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for {
		var group []*pendingWrite
		select {
		case w := <-c.queue:
			group = append(group, w)
		case <-c.stop:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case w := <-c.queue:
				group = append(group, w)
			default:
				break gather
			}
		}
		c.commit(group)
	}
}

// commit runs group in one transaction; see commitGroup.
func (c *committer) commit(group []*pendingWrite) { commitGroup(c.db, group, c.observe) }

// commitGroup runs group in one transaction. A write that fails rolls the
// transaction back; it then runs alone, for an answer of its own, and the
// others are committed without it. observe, when set, learns how long each
// transaction that committed a group took.
func commitGroup(db *bolt.DB, group []*pendingWrite, observe func(time.Duration, int)) {
	for len(group) > 0 {
		failed := -1
		start := time.Now()
		err := db.Update(func(tx *bolt.Tx) error {
			for i, w := range group {
				if err := w.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if observe != nil {
				observe(time.Since(start), len(group))
			}
			for _, w := range group {
				w.err <- err
			}
			return
		}
		w := group[failed]
		w.err <- db.Update(w.fn)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}
