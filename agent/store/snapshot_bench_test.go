package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
)

// fillStore creates n env secrets of 64-byte values, spread over 100
// owners, with 16 concurrent writers, as a busy agent would.
func fillStore(b *testing.B, s *Store, n int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				sec := envSecret(fmt.Sprintf("user%d", i%100), fmt.Sprintf("secret-%d", i), fmt.Sprintf("%064d", i))
				sec.ID = fmt.Sprintf("01J%023d", i)
				if _, err := s.CreateSecret(sec); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkSnapshot measures the operator's snapshot file of a store of
// 1k and 10k secrets: its size, the time to save it sealed, and the time
// to check and restore it.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s := clusterStore(b, b.TempDir(), nil)
		fillStore(b, s, n)
		var file bytes.Buffer
		b.Run(fmt.Sprintf("save-%d", n), func(b *testing.B) {
			for b.Loop() {
				file.Reset()
				w, err := s.NewSnapshotWriter(context.Background(), &file)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Snapshot(w); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(file.Len()), "file-bytes")
			b.ReportMetric(float64(file.Len())/float64(n), "bytes/secret")
		})
		b.Run(fmt.Sprintf("restore-%d", n), func(b *testing.B) {
			for b.Loop() {
				sp, err := s.SpoolSnapshot(context.Background(), bytes.NewReader(file.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Restore(sp.File); err != nil {
					b.Fatal(err)
				}
				sp.Close()
			}
		})
		if got := s.Summary().Secrets; got != n {
			b.Fatalf("got %d secrets after the restores, want %d", got, n)
		}
		s.Close()
	}
}

// BenchmarkCreateSecret measures secret writes on one store from 16
// concurrent writers, which share commits.
func BenchmarkCreateSecret(b *testing.B) {
	s := clusterStore(b, b.TempDir(), nil)
	defer s.Close()
	b.ResetTimer()
	fillStore(b, s, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "secrets/s")
}
