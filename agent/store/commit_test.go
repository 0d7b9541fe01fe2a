package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitterGroupsWrites: concurrent writes share transactions, each is
// answered after its commit, and one that fails changes nothing and fails
// alone.
func TestCommitterGroupsWrites(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	c := newCommitter(db)
	const writers = 200
	errBad := errors.New("bad write")
	var mu sync.Mutex
	txs := map[int]bool{}
	var wg sync.WaitGroup
	results := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.write(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("b"))
				if err := b.Put([]byte(fmt.Sprint(i)), []byte("v")); err != nil {
					return err
				}
				if i%50 == 7 {
					return errBad // after its Put: the rollback must undo it
				}
				mu.Lock()
				txs[tx.ID()] = true
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	c.close()
	if err := c.write(func(*bolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: got %v, want ErrClosed", err)
	}
	db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i, err := range results {
			stored := b.Get([]byte(fmt.Sprint(i))) != nil
			switch bad := i%50 == 7; {
			case bad && (!errors.Is(err, errBad) || stored):
				t.Errorf("write %d: got %v, stored %v; want errBad and nothing stored", i, err, stored)
			case !bad && (err != nil || !stored):
				t.Errorf("write %d: got %v, stored %v; want it committed", i, err, stored)
			}
		}
		return nil
	})
	// 200 writers started at once queue up behind the first fsync, so
	// some always share a transaction.
	if len(txs) >= writers-4 {
		t.Errorf("%d writes took %d transactions, want them grouped", writers-4, len(txs))
	}
}
